//! The command line of `tandem field`: global flags (the phone's folder, server, position,
//! clock) and one subcommand per thing an agent does on the phone.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tandem_core::model::{DisputeKind, PaymentMethod, PersonMet};

/// The phone folder used when `--dir` is not given.
pub const DEFAULT_DIR: &str = "./tandem-phone";

/// `tandem field`: one phone in the terminal.
#[derive(Debug, Args)]
#[command(after_help = super::error::EXIT_CODES)]
pub struct FieldArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: FieldCommand,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The phone's data folder (keys, encrypted store, evidence).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The server's base URL; default: the one stored at enrolment.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Where the phone is: GCJ-02 degrees as a map shows them, accuracy in metres (default
    /// 10). Without it the phone has no fix, and check-in is refused (V05).
    #[arg(
        long,
        global = true,
        value_name = "LAT,LON[,ACCURACY_M]",
        allow_hyphen_values = true
    )]
    pub position: Option<String>,
    /// Marks the position as coming from a mock-location app (V05 refuses it).
    #[arg(long, global = true, requires = "position")]
    pub mock_location: bool,
    /// Sets the phone's wall clock (RFC 3339); monotonic time stays real, so the
    /// server-anchored time the rules use is not fooled (V04).
    #[arg(long, global = true, value_name = "RFC3339")]
    pub wall_clock: Option<String>,
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bar and no warnings on stderr (errors still print).
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// What the phone does.
#[derive(Debug, Subcommand)]
pub enum FieldCommand {
    /// Enrol this phone with a one-time code from the admin; stores the server URL.
    Enroll {
        /// The enrollment code.
        code: String,
    },
    /// Pull assignments and policy, push sealed visits, purge acknowledged media.
    Sync,
    /// Push sealed visits only, with a progress bar on a terminal.
    Push,
    /// The outbox: pending and quarantined bundles, bytes left, last error; E03 deadlines.
    Status,
    /// The visits this phone holds, their state and what the rules say now.
    Visits,
    /// Lead: check in together with the partner's phone (V03).
    Checkin {
        /// The visit.
        visit: String,
        /// Why the team checks in outside the geofence (V05: recorded and flagged).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Lead: check out together with the partner's phone.
    Checkout {
        /// The visit.
        visit: String,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Lead: a cash receipt co-signed by the partner (C01, C02).
    Receipt {
        /// The visit.
        visit: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Lead: seal the checked-out visit into a bundle both agents sign (E01).
    Seal {
        /// The visit.
        visit: String,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Partner: review a challenge (prints what is co-signed) and write the reply.
    Answer {
        /// The challenge: a file, or - for stdin (ends at an empty line or EOF).
        #[arg(long = "in", value_name = "FILE|-")]
        input: String,
        /// Where to write the reply: a file, or - for stdout.
        #[arg(long = "out", value_name = "FILE|-")]
        output: String,
        /// Co-sign without asking (asked only when stdin is a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Take a photo: a JPEG (or PNG) file as the camera made it.
    Photo {
        /// The visit.
        visit: String,
        /// The photo file.
        file: PathBuf,
        /// Taken inside the home (V08: needs the occupant's consent).
        #[arg(long)]
        interior: bool,
    },
    /// Record audio: a mono 16-bit WAV, or raw PCM s16le with --rate; pushed in 20 ms
    /// chunks at the pace a microphone delivers them (a 60 s file takes 60 s).
    Audio {
        /// The visit.
        visit: String,
        /// The audio file.
        file: PathBuf,
        /// The file is raw PCM s16le mono at this sample rate (Hz).
        #[arg(long, value_name = "HZ")]
        rate: Option<u32>,
    },
    /// Write a note.
    Note {
        /// The visit.
        visit: String,
        /// The text.
        text: String,
    },
    /// Record whose identity was confirmed (V09).
    Identity {
        /// The visit.
        visit: String,
        /// Who.
        #[arg(long, value_enum)]
        person: Person,
    },
    /// The debtor disputes: collection stops (V10). Photos are taken first.
    Dispute {
        /// The visit.
        visit: String,
        /// What is disputed.
        #[arg(long, value_enum)]
        kind: Dispute,
        /// Photo of the signed statement.
        #[arg(long, value_name = "JPEG")]
        statement_photo: Option<PathBuf>,
        /// Photo of the ID card's front.
        #[arg(long, value_name = "JPEG")]
        id_front: Option<PathBuf>,
        /// Photo of the ID card's back.
        #[arg(long, value_name = "JPEG")]
        id_back: Option<PathBuf>,
    },
}

/// How the lead shows its challenge and reads the partner's reply.
#[derive(Debug, Clone, Args)]
pub struct Exchange {
    /// Where to write the challenge frames: a file (written whole), or - for stdout.
    #[arg(long, value_name = "FILE|-")]
    pub challenge_out: String,
    /// Where the reply comes from: a file to wait for (an old one is removed first), or -
    /// for stdin (ends at an empty line or EOF).
    #[arg(long, value_name = "FILE|-")]
    pub reply_in: String,
    /// Seconds to wait for the reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
}

/// What the agent enters for a receipt.
#[derive(Debug, Clone, Args)]
pub struct ReceiptArgs {
    /// Amount received, in fen (1 yuan = 100 fen).
    #[arg(long, value_name = "FEN")]
    pub amount_fen: i64,
    /// The payer's name.
    #[arg(long, value_name = "NAME")]
    pub payer_name: String,
    /// Who paid.
    #[arg(long, value_enum, default_value = "debtor")]
    pub payer_role: Person,
    /// How.
    #[arg(long, value_enum, default_value = "cash")]
    pub method: Method,
    /// The payer's handwritten signature (PNG). Without it the receipt is incomplete (C02).
    #[arg(long, value_name = "PNG")]
    pub payer_signature: Option<PathBuf>,
}

/// A person met, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Person {
    /// The card holder.
    Debtor,
    /// The guarantor.
    Guarantor,
    /// Anyone else.
    ThirdParty,
}

impl From<Person> for PersonMet {
    fn from(p: Person) -> Self {
        match p {
            Person::Debtor => PersonMet::Debtor,
            Person::Guarantor => PersonMet::Guarantor,
            Person::ThirdParty => PersonMet::ThirdParty,
        }
    }
}

/// A payment method, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Method {
    /// Cash.
    Cash,
    /// A cheque.
    Cheque,
}

impl From<Method> for PaymentMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Cash => PaymentMethod::Cash,
            Method::Cheque => PaymentMethod::Cheque,
        }
    }
}

/// A dispute, as typed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Dispute {
    /// Denies the card is theirs.
    DeniesCard,
    /// Disputes the amount.
    DisputesAmount,
    /// Denies having applied (impersonation).
    DeniesApplication,
}

impl From<Dispute> for DisputeKind {
    fn from(d: Dispute) -> Self {
        match d {
            Dispute::DeniesCard => DisputeKind::DeniesCard,
            Dispute::DisputesAmount => DisputeKind::DisputesAmount,
            Dispute::DeniesApplication => DisputeKind::DeniesApplication,
        }
    }
}
