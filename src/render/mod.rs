//! Turning plans and reports into text for people and JSON for machines.
//! Output is deterministic: sorted by address, no timestamps.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

use std::io::IsTerminal;

/// Colour on a TTY unless NO_COLOR is set or `--color` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled_for_stdout(self) -> bool {
        self.enabled(std::io::stdout().is_terminal())
    }
    pub fn enabled_for_stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }
    fn enabled(self, tty: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// Paints text when colour is on.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    fn wrap(&self, style: anstyle::Style, s: &str) -> String {
        if self.on {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Green.on_default(), s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Yellow.on_default(), s)
    }
    pub fn red(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Red.on_default(), s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().bold(), s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().dimmed(), s)
    }
}

/// A JSON value on one line; strings without quotes.
pub(crate) fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
