//! Authentication: the sign-in session, the local directory (argon2 passwords), throttling of
//! failed attempts, and the sign-in page. Login never knows which protocol asked: a front end
//! stores a [`PendingLogin`] and gets the person back at its `resume_url`.

mod decision;
mod directory;
mod http_client;
mod logout;
pub mod page;
mod session;
mod throttle;
pub mod upstream;

pub use decision::{decide, Freshness, SessionDecision};
pub use directory::{check_password_hash, hash_password, Directory, LoginError};
pub use http_client::oidc_http_client;
pub use logout::{
    end_session, sign_out, LogoutError, LogoutParticipant, LogoutParticipants, SignedOut,
};
pub use session::{PendingLogin, SignedIn};
pub use throttle::{
    AccountKey, Attempt, BoxFuture, LoginThrottle, MemoryThrottle, NetworkKey, Throttled,
};
