//! The names of an instance's secrets, as stored (encrypted) in the controller's database and,
//! for most of them, as set on the instance's Fly app (where the gateway reads them as
//! environment variables). One list for the API, the engine and the gateway files.

pub use crate::spec::ProviderKey;

/// The generated token devices and the controller use to talk to the gateway.
pub const GATEWAY_TOKEN: &str = "OPENCLAW_GATEWAY_TOKEN";

/// Composio's platform key (an operator setting, set on apps with Composio enabled).
pub const COMPOSIO_API_KEY: &str = "COMPOSIO_API_KEY";

/// The Composio entity (user) the agent acts for.
pub const COMPOSIO_ENTITY_ID: &str = "COMPOSIO_ENTITY_ID";

/// Stored only (never set on Fly under this name): the current LLM proxy token, which the app
/// holds as [`ProviderKey::AnthropicApiKey`]'s variable.
pub const LLM_PROXY_TOKEN: &str = "LLM_PROXY_TOKEN";

/// Stored only: the private key of the controller's own device identity for one gateway.
pub const CONTROLLER_DEVICE_KEY: &str = "CONTROLLER_DEVICE_KEY";
