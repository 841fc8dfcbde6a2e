//! Entry point: parse arguments, run, turn the outcome into an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = suoops_policy::cli::Cli::parse();
    suoops_policy::cli::run(cli)
}
