//! `completions SHELL` and `man`: shell completions and a man page
//! generated from the clap definitions (as ripgrep does from its flag
//! definitions), so `--help`, completions and the man page never disagree.

use clap::CommandFactory;

use super::{out, Cli};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the completion script for a shell.
pub fn completions(a: &CompletionsArgs) -> u8 {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "suoops-policy", &mut buf);
    out(&String::from_utf8_lossy(&buf));
    0
}

/// Print the man page (roff), subcommands included.
pub fn man() -> u8 {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd.clone()).render(&mut buf) {
        eprintln!("error: cannot render the man page: {e}");
        return 1;
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("suoops-policy-{}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().name(name));
        if let Err(e) = page.render_title(&mut buf).and_then(|_| {
            page.render_name_section(&mut buf)?;
            page.render_synopsis_section(&mut buf)?;
            page.render_description_section(&mut buf)?;
            page.render_options_section(&mut buf)
        }) {
            eprintln!("error: cannot render the man page: {e}");
            return 1;
        }
    }
    out(&String::from_utf8_lossy(&buf));
    0
}
