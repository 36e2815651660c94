//! A person's hand in `canary run`: while the run follows its deployment on a terminal,
//! a line typed there acts on it as the commands do — `approve [reason]` passes the gate
//! it waits at (`canary approve`), `promote [reason]` and `promote --full [reason]` skip
//! the rest of the step or every step (`canary promote`). Anything else prints the
//! choices. Ctrl-C still rolls back (execute.rs).

use std::io::{BufRead as _, IsTerminal as _};

use canary_lambda::Services;
use canary_store::ServiceRef;
use tokio::sync::mpsc;

use crate::progress::Printer;
use crate::records::gates::{approve, promote};

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Approve { reason: String },
    Promote { full: bool, reason: String },
    Help,
}

/// Reads one typed line.
pub fn parse_line(line: &str) -> Option<Typed> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let said = |default: &str| {
        if rest.is_empty() {
            default.to_owned()
        } else {
            rest.to_owned()
        }
    };
    Some(match word {
        "approve" | "a" => Typed::Approve {
            reason: said("approved from the terminal"),
        },
        "promote" | "p" => {
            let (full, rest) = match rest.strip_prefix("--full") {
                Some(r) => (true, r.trim()),
                None => (false, rest),
            };
            Typed::Promote {
                full,
                reason: if rest.is_empty() {
                    "promoted from the terminal".to_owned()
                } else {
                    rest.to_owned()
                },
            }
        }
        _ => Typed::Help,
    })
}

/// Starts reading lines from the terminal (nothing when standard input is not one);
/// the caller aborts the task when the run ends.
pub fn listen(
    services: &Services,
    svc: &ServiceRef,
    by: &str,
    printer: &Printer,
) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // std's stdin blocks: a thread of its own feeds the channel (it ends with the
    // process; a line typed after the run is simply not read).
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (store, clock, svc) = (services.store.clone(), services.clock.clone(), svc.clone());
    let (by, printer) = (by.to_owned(), printer.clone());
    Some(tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let said = match parse_line(&line) {
                None => continue,
                Some(Typed::Approve { reason }) => {
                    approve(&store, &svc, &by, &reason, clock.now_secs()).await
                }
                Some(Typed::Promote { full, reason }) => {
                    promote(&store, &svc, full, &by, &reason, clock.now_secs()).await
                }
                Some(Typed::Help) => Ok(
                    "type `approve [reason]` (pass the gate), `promote [reason]` (skip the rest of the step) or `promote --full [reason]` (go to 100%); Ctrl-C rolls back".to_owned(),
                ),
            };
            match said {
                Ok(s) => printer.println(&s),
                Err(e) => printer.println(&format!("not done: {e}")),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_read_as_the_commands() {
        assert_eq!(parse_line("  "), None);
        assert_eq!(
            parse_line("approve"),
            Some(Typed::Approve {
                reason: "approved from the terminal".into()
            })
        );
        assert_eq!(
            parse_line("a  looks good "),
            Some(Typed::Approve {
                reason: "looks good".into()
            })
        );
        assert_eq!(
            parse_line("promote --full hotfix"),
            Some(Typed::Promote {
                full: true,
                reason: "hotfix".into()
            })
        );
        assert_eq!(
            parse_line("p"),
            Some(Typed::Promote {
                full: false,
                reason: "promoted from the terminal".into()
            })
        );
        assert_eq!(parse_line("rollback"), Some(Typed::Help));
    }
}
