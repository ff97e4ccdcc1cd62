//! Progress bars for long commands.
//!
//! A bar is drawn on stderr only when stderr is a terminal and the user did
//! not pass `--quiet`; otherwise every call is a cheap no-op, so commands
//! report progress unconditionally and logs and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A progress bar over a known number of items, with rate and ETA.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` items labelled `label`; hidden when `quiet` or
    /// when stderr is not a terminal.
    pub fn new(total: u64, label: &str, quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(
            "{msg:>10} [{elapsed_precise}] {wide_bar:.cyan/blue} {human_pos}/{human_len} \
             ({rate}, ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        // indicatif's own {per_sec} prints four decimals.
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
            },
        )
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Sets the number of items done.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Adds `n` items done.
    pub fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Removes the bar, leaving the terminal to the summary that follows.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
