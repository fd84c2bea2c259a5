//! Writes hc-migrate style exports with known contents.
//!
//! `cargo run --example gen_fixture -- quirks -o fixtures/quirks.tar.gz.aes` remakes the
//! bundled fixture; `scale` makes large exports for the benchmark.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use hcconv::archive::crypto::Kdf;
use hcconv::testkit::{self, Container, ScaleShape, ScaleSpec};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The quirks fixture: every message kind and every known deviation.
    Quirks {
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "md5")]
        container: Packaging,
        #[arg(long, default_value = testkit::FIXTURE_PASSWORD)]
        password: String,
        /// Also write what the export contains as JSON.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// A large synthetic export for benchmarks.
    Scale {
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 50_000)]
        messages: u64,
        #[arg(long, default_value_t = 50)]
        rooms: u64,
        #[arg(long, default_value_t = 200)]
        users: u64,
        /// One message in N has an attachment (0: none).
        #[arg(long, default_value_t = 100)]
        attachment_every: u64,
        #[arg(long, default_value_t = 20_000)]
        attachment_bytes: usize,
        #[arg(long, default_value_t = 10)]
        private_percent: u64,
        /// `default`, `text-heavy` (longer texts, small files, many members per
        /// room, private messages in both histories, metadata last), or
        /// `integration-heavy` (text-heavy with 35 % of room messages integration
        /// notifications, private messages over many distinct pairs).
        #[arg(long, value_enum, default_value = "default")]
        shape: Shape,
        #[arg(long, value_enum, default_value = "md5")]
        container: Packaging,
        #[arg(long, default_value = testkit::FIXTURE_PASSWORD)]
        password: String,
    },
}

#[derive(ValueEnum, Clone, Copy)]
enum Shape {
    Default,
    TextHeavy,
    IntegrationHeavy,
}

#[derive(ValueEnum, Clone, Copy)]
enum Packaging {
    Md5,
    Sha256,
    Pbkdf2,
    TarGz,
    Tar,
}

impl Packaging {
    fn container(self) -> Container {
        match self {
            Packaging::Md5 => Container::Encrypted(Kdf::Md5),
            Packaging::Sha256 => Container::Encrypted(Kdf::Sha256),
            Packaging::Pbkdf2 => Container::Encrypted(Kdf::Pbkdf2(10_000)),
            Packaging::TarGz => Container::TarGz,
            Packaging::Tar => Container::Tar,
        }
    }
}

fn main() -> std::io::Result<()> {
    match Cli::parse().what {
        What::Quirks { output, container, password, manifest } => {
            let (entries, m) = testkit::quirks_fixture();
            testkit::write_export(&entries, container.container(), &password, BufWriter::new(File::create(&output)?))?;
            if let Some(path) = manifest {
                std::fs::write(path, serde_json::to_string_pretty(&m)? + "\n")?;
            }
        }
        What::Scale { output, messages, rooms, users, attachment_every, attachment_bytes, private_percent, shape, container, password } => {
            let shape = match shape {
                Shape::Default => ScaleShape::Default,
                Shape::TextHeavy => ScaleShape::TextHeavy,
                Shape::IntegrationHeavy => ScaleShape::IntegrationHeavy,
            };
            let spec = ScaleSpec { messages, rooms, users, attachment_every, attachment_bytes, private_percent, shape };
            testkit::write_scaled_export(spec, container.container(), &password, BufWriter::new(File::create(&output)?))?;
        }
    }
    Ok(())
}
