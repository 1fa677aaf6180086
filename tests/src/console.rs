//! The web console's API as a manager and legal staff use it, over real HTTP: the client
//! the server's own tests use too ([`Server::console`](crate::Server::console) signs in).

pub use tandem_server::testing::console::{CaseRef, Console};
