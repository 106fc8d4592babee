//! The `ferry` binary: parse the command line, set up logging, run the
//! command, and print the whole "caused by" chain of any error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ferry::tune_allocator();
    let cli = ferry::commands::Cli::parse();
    if !matches!(cli.command, ferry::commands::Command::Run(_)) {
        // Rust ignores SIGPIPE, so printing to a closed pipe (`ferry check |
        // head -1`) would panic; a command that only prints ends quietly
        // instead, as other command-line tools do. `ferry run` keeps it
        // ignored: it finishes its work whatever happens to its output.
        // SAFETY: setting a signal's disposition to its default, before any
        // thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    ferry::commands::init_logging(&cli.log);
    match ferry::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
