//! Progress on stderr: a bar (archive bytes read, then messages converted, with an
//! ETA) when stderr is a terminal; plain phase lines when it is not (CI logs,
//! runbooks); nothing with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A live bar (stderr is a terminal).
    Bar,
    /// One line per phase.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// The mode for this run: `--quiet` wins, then whether stderr is a terminal.
    pub fn detect(quiet: bool) -> Mode {
        match (quiet, stderr_is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Lines,
        }
    }
}

/// The progress display of one run.
pub struct Progress {
    mode: Mode,
    bar: ProgressBar,
}

impl Progress {
    /// A display for reading an input of `input_bytes` bytes.
    pub fn new(mode: Mode, input_bytes: u64) -> Self {
        let bar = match mode {
            Mode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(input_bytes), ProgressDrawTarget::stderr());
                bar.set_style(ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}").expect("static template").progress_chars("=> "));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            }
            _ => ProgressBar::hidden(),
        };
        Progress { mode, bar }
    }

    /// A display counting `total` items of `unit` (`files`), for `hcconv upload`.
    pub fn counting(mode: Mode, total: u64, unit: &str) -> Self {
        let progress = Progress::new(mode, total);
        if mode == Mode::Bar {
            let template = format!("{{msg:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} eta {{eta}}");
            progress.bar.set_style(ProgressStyle::with_template(&template).expect("a valid template").progress_chars("=> "));
        }
        progress
    }

    /// A line for the user: above the bar on a terminal, on its own otherwise,
    /// nothing with `--quiet`.
    pub fn note(&self, line: &str) {
        match self.mode {
            Mode::Bar => self.bar.println(line),
            Mode::Lines => eprintln!("{line}"),
            Mode::Quiet => {}
        }
    }

    /// Names what the bar is doing (`sending`), for steps that [`Progress::note`]
    /// already tells in full: no line of its own.
    pub fn label(&self, name: &str) {
        if self.mode == Mode::Bar {
            self.bar.set_message(name.to_string());
        }
    }

    /// Starts a phase: `reading`, `writing`…
    pub fn phase(&self, name: &str, detail: &str) {
        match self.mode {
            Mode::Bar => self.bar.set_message(name.to_string()),
            Mode::Lines => eprintln!("hcconv: {name} {detail}"),
            Mode::Quiet => {}
        }
    }

    /// Bytes of the input read so far.
    pub fn read_bytes(&self, n: u64) {
        self.bar.set_position(n);
    }

    /// Switches the bar to counting `total` messages.
    pub fn count_messages(&self, total: u64) {
        if self.mode == Mode::Bar {
            self.bar.set_style(ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} messages {per_sec} eta {eta}").expect("static template").progress_chars("=> "));
            self.bar.set_length(total);
            self.bar.set_position(0);
        }
    }

    /// Messages converted so far.
    pub fn messages(&self, n: u64) {
        self.bar.set_position(n);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A clone of the bar for hooks that outlive a borrow.
    pub fn handle(&self) -> ProgressBar {
        self.bar.clone()
    }
}

/// True when progress output may be drawn (stderr is a terminal).
pub fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}
