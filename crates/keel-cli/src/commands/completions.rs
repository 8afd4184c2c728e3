//! `keel completions bash|zsh|fish`: the shell completion script, from clap_complete.

use clap::CommandFactory;

use crate::args::{Cli, Shell};

pub fn print(shell: Shell) {
    let mut command = Cli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "keel", &mut std::io::stdout());
}
