//! Everything that boots the real OpenClaw gateway (the pinned version,
//! `scripts/install-openclaw.sh`): the gateway module against a gateway of its own
//! (`gateway_real`), the boot step and the simulator's process mode (`sim_process`), what images
//! run there (`sim_images`), the controller driving gateways through the simulator's proxy
//! (`e2e_gateway`), pairing by subscription with two replicas (`e2e_pairing`), a managed Telegram
//! channel against the test kit's fake Bot API, connected, a stranger's DM paired through the API
//! and answered by the agent (another approved with the support console's button in
//! Chromium), a bad and a rotated token and the channel removed, all on one gateway
//! (`e2e_channels`), what reaches a
//! running gateway without a restart (`hot_reload`), a private instance over the simulator's
//! private network with a stale gateway lock on its volume (`e2e_private`), the adoption of a
//! gateway the old web app built (`e2e_adopt_gateway`), the support console in headless
//! Chromium, whose pairing test approves a device on a real gateway (`support_console`), and
//! `make run`'s real stack with the OpenClaw Control UI paired in that browser (`dev_real`), and
//! the agent answering in that Control UI from the test kit's fake model, as the customer's
//! OpenClaws agent, and running a Composio tool against the fake Composio (`agent_e2e`).
//!
//! One binary so the suite links it once and runs the OpenClaw install check once (the kit keeps
//! the wrapper's path for the process). A booted gateway (10–16 s, about 1 GB) is shared where
//! the assertions allow: `gateway_real`'s tests share one gateway, started on first use. The
//! other gateways belong to one test each, because that test drives its instance's life (stops,
//! kills, restarts or deletes the machine) or asserts fleet-wide figures of its controller
//! (pairing approvals by policy) that another test's instance on a shared stack would satisfy.

mod agent_e2e;
mod dev_real;
mod e2e_adopt_gateway;
mod e2e_channels;
mod e2e_gateway;
mod e2e_pairing;
mod e2e_private;
mod gateway_real;
mod hot_reload;
mod release_real;
mod sim_images;
mod sim_process;
mod support_console;

/// A stack whose gateways boot for real and reach a model through the LLM proxy, at a fifth of
/// Fly's latencies and resynced hourly (every look comes from the test's own writes); its
/// controller is not started, so the test can point it at its fakes first.
pub(crate) async fn model_stack() -> openclaws_testkit::stack::Stack {
    openclaws_testkit::stack::Stack::start_without_controller(
        openclaws_testkit::stack::StackOptions {
            gateways: true,
            llm_proxy: true,
            latency_scale: 0.2,
            resync_seconds: 3600,
            ..Default::default()
        },
    )
    .await
}
