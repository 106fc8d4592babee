//! The `ferry` binary: parse the command line, set up logging, run the
//! command, and print the whole "caused by" chain of any error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ferry::commands::Cli::parse();
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
