//! Authentication: the sign-in session, the local directory (argon2 passwords), throttling of
//! failed attempts, and the sign-in page. Login never knows which protocol asked: a front end
//! stores a [`PendingLogin`] and gets the person back at its `resume_url`.

mod directory;
mod http_client;
pub mod page;
mod session;
mod throttle;
pub mod upstream;

pub use directory::{hash_password, Directory, LoginError};
pub use http_client::OidcHttp;
pub use session::{PendingLogin, SignedIn};
pub use throttle::{AccountKey, Attempt, LoginThrottle, MemoryThrottle, NetworkKey, Throttled};
