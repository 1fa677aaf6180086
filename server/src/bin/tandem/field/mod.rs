//! `tandem field`: one phone in the terminal. Each subcommand opens the phone's folder, asks
//! core to do one thing an agent does on the phone, and prints the result; every rule and
//! decision is core's. Two terminals with two folders play the two phones of a visit, the
//! handshake's QR codes travelling as text files or through stdin and stdout.

mod args;
mod capture;
mod device;
mod error;
mod frames;
mod handshake;
mod output;
mod sync;

use std::process::ExitCode;

pub use args::FieldArgs;
use args::FieldCommand;
use device::Device;
use error::{FieldError, FieldResult};
use handshake::LeadAction;
use output::Out;
use tandem_core::model::{PersonMet, VisitId};
use tandem_core::phone::VisitAction;

/// Runs one `tandem field` command.
pub fn run(args: FieldArgs) -> ExitCode {
    let out = Out {
        json: args.global.json,
        quiet: args.global.quiet,
    };
    let device = match Device::open(&args.global) {
        Ok(device) => device,
        Err(e) => return e.report(None),
    };
    match dispatch(&device, out, args.command) {
        Ok(()) => ExitCode::from(error::OK),
        Err(e) => e.report(device.hint(&e)),
    }
}

fn visit_id(text: &str) -> FieldResult<VisitId> {
    text.trim().parse().map_err(|_| {
        FieldError::usage(format!(
            "{text:?} is not a visit id (see `tandem field visits`)"
        ))
    })
}

fn dispatch(device: &Device, out: Out, command: FieldCommand) -> FieldResult<()> {
    match command {
        FieldCommand::Enroll { code } => sync::enroll(device, out, &code),
        FieldCommand::Sync => sync::sync(device, out),
        FieldCommand::Push => sync::push(device, out),
        FieldCommand::Status => sync::status(device, out),
        FieldCommand::Visits => sync::visits(device, out),
        FieldCommand::Checkin {
            visit,
            reason,
            exchange,
        } => handshake::lead(
            device,
            out,
            visit_id(&visit)?,
            LeadAction::CheckIn(reason),
            &exchange,
        ),
        FieldCommand::Checkout { visit, exchange } => handshake::lead(
            device,
            out,
            visit_id(&visit)?,
            LeadAction::CheckOut,
            &exchange,
        ),
        FieldCommand::Receipt {
            visit,
            receipt,
            exchange,
        } => handshake::lead(
            device,
            out,
            visit_id(&visit)?,
            LeadAction::Receipt(&receipt),
            &exchange,
        ),
        FieldCommand::Seal { visit, exchange } => {
            handshake::lead(device, out, visit_id(&visit)?, LeadAction::Seal, &exchange)
        }
        FieldCommand::Answer { input, output, yes } => {
            handshake::answer(device, out, &input, &output, yes)
        }
        FieldCommand::Photo {
            visit,
            file,
            interior,
        } => capture::photo(device, out, visit_id(&visit)?, &file, interior),
        FieldCommand::Audio { visit, file, rate } => {
            capture::audio(device, out, visit_id(&visit)?, &file, rate)
        }
        FieldCommand::Note { visit, text } => capture::note(device, out, visit_id(&visit)?, &text),
        FieldCommand::Identity { visit, person } => {
            let person: PersonMet = person.into();
            capture::record(
                device,
                out,
                visit_id(&visit)?,
                &VisitAction::IdentityConfirmed { person },
                "identity confirmed",
            )
        }
        FieldCommand::Dispute {
            visit,
            kind,
            statement_photo,
            id_front,
            id_back,
        } => capture::dispute(
            device,
            out,
            visit_id(&visit)?,
            kind.into(),
            [
                statement_photo.as_deref(),
                id_front.as_deref(),
                id_back.as_deref(),
            ],
        ),
    }
}
