//! The vocabulary of an instance's status: condition types (`status.conditions[].type`) and the
//! machine-readable reasons of conditions, waits, blocks and errors (`reason`,
//! `lastError.reason`). Shared by the engine (which sets them), telemetry (which counts them),
//! the API and the support views.
//!
//! Both serialize as their CamelCase names, exactly as the API has always shown them. A value
//! written by a newer controller that this one does not know reads as `Unknown` instead of
//! failing, so replicas of two versions can run side by side during a rolling deploy.

use serde::{Deserialize, Serialize};

/// Defines a string-valued vocabulary enum: CamelCase wire names equal to the variant names,
/// `as_str`, `ALL` (every known value), `Display`, and an `Unknown` variant that any other
/// string reads as.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version does not know (written by a newer controller).
            #[serde(other)]
            Unknown,
        }

        impl $name {
            /// Every known value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value with this wire name; `Unknown` for any other string.
            pub fn parse(name: &str) -> $name {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == name)
                    .unwrap_or($name::Unknown)
            }

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                    $name::Unknown => "Unknown",
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

vocabulary! {
    /// The conditions this controller maintains on every instance.
    ConditionType {
        /// The app exists and carries our ownership mark.
        AppReady,
        /// The app holds the desired secrets (gateway token, model keys, Composio entity).
        SecretsReady,
        /// The hostname's CNAME points at the app.
        DnsReady,
        /// Fly holds an issued certificate for the hostname.
        CertificateReady,
        /// The data volume exists at the desired size.
        VolumeReady,
        /// The gateway machine exists with the desired config and run state.
        MachineReady,
        /// The gateway answers `/startupz` and `/readyz` through the public path.
        GatewayHealthy,
        /// The machine carries the desired boot bundle and the live config's owned fields match.
        ConfigSeeded,
        /// The controller can list and approve the gateway's pairing requests.
        PairingReady,
        /// Every enabled channel of `spec.channels` is connected (set only when channels are
        /// configured; it does not hold back `Ready`: a customer's bad bot token leaves the
        /// web app working).
        ChannelsReady,
        /// Reconciling is paused by `spec.paused`.
        Paused,
        /// Everything above holds and the gateway is running.
        Ready,
    }
}

vocabulary! {
    /// Why a condition is what it is, why the engine waits, why an instance is blocked, or what
    /// class of error a step hit.
    Reason {
        // AppReady, VolumeReady, MachineReady, DnsReady, CertificateReady.
        /// The resource exists.
        Created,
        /// The resource does not exist yet.
        NotCreated,
        /// The app's name belongs to someone else (another org, or no ownership mark).
        AppNameTaken,
        /// The app claimed for adoption does not hold the web app's layout (`docs/adoption.md`).
        AdoptionRefused,
        /// The volume is smaller than the spec asks.
        Extending,
        /// The DNS record points elsewhere and is being updated.
        Updating,
        /// The hostname has records this controller did not make (left alone).
        RecordNotOurs,
        /// The hostname's record points at the app.
        Configured,
        /// The certificate is issued.
        Issued,
        /// Certificate issuance is rate limited by the CA.
        RateLimited,
        /// The certificate awaits validation.
        AwaitingValidation,
        /// No certificate was requested yet.
        NotRequested,
        // SecretsReady.
        /// Our last secrets write holds the desired values.
        Applied,
        /// No app secrets are wanted.
        NoneWanted,
        /// The app does not hold the desired secrets yet.
        NotApplied,
        // MachineReady and machine states.
        /// The machine's config differs from the desired one.
        ConfigDrift,
        /// The machine runs.
        Started,
        /// The machine is stopped (as desired, or as observed).
        Stopped,
        /// The machine's process keeps exiting.
        CrashLooping,
        /// The kernel killed the machine's process for using more memory than the machine has
        /// (Fly's `exit_event.oom_killed`); the message names the memory size.
        OutOfMemory,
        /// The machine's `OPENCLAW_STATE_DIR` is not on the data volume, so the gateway's state
        /// would be lost on every restart.
        StateDirOutsideVolume,
        /// The boot step removed a gateway lock on the volume that no live gateway owned
        /// (an event, from the boot step's notices).
        StaleGatewayLockRemoved,
        /// The machine is being created.
        Creating,
        /// The machine is starting or restarting.
        Starting,
        /// The machine is stopping or suspending.
        Stopping,
        /// The machine failed.
        Failed,
        /// The machine is being destroyed.
        Destroying,
        /// The machine's host does not answer; Fly answers from its cache.
        HostUnreachable,
        // Gateway conditions.
        /// The gateway is healthy.
        Ready,
        /// `/startupz` says the gateway is still starting.
        GatewayStarting,
        /// `/readyz` reports failing checks.
        GatewayNotReady,
        /// 403 `proxy_attribution_required`: `gateway.trustedProxies` misses the proxy.
        TrustedProxyMisconfigured,
        /// Nothing answered at the gateway's address.
        GatewayUnreachable,
        /// The machine is stopped: no gateway runs.
        MachineStopped,
        /// The machine does not run (yet).
        MachineNotRunning,
        /// The gateway was not looked at yet.
        NotChecked,
        /// The machine does not carry the desired boot bundle yet.
        MachineUpdatePending,
        /// The machine carries the desired boot bundle (live config not read).
        BundleDelivered,
        /// The live config holds the desired owned fields.
        Seeded,
        /// Owned config fields were changed out of band.
        OwnedFieldsDrifted,
        /// The gateway reports its config file as invalid.
        ConfigInvalid,
        /// A recorded approval's request expired.
        RequestExpired,
        /// No pairing request is pending.
        NothingPending,
        /// Pairing requests wait for approval.
        AwaitingApproval,
        /// The controller's own device is not paired yet.
        ControllerNotPaired,
        /// Connecting with the controller's device failed.
        GatewayAccessFailed,
        // ChannelsReady and status.channels.
        /// The channel runs and is connected to its service.
        Connected,
        /// The service refused the channel's credentials.
        InvalidToken,
        /// The channel does not reach its service (or does not run).
        Unreachable,
        /// The channel (re)started moments ago and has not connected yet.
        Pending,
        /// The channel is disabled in the spec.
        Disabled,
        /// Some enabled channels are not connected.
        ChannelsFailing,
        // Ready and waits.
        /// Everything holds.
        Converged,
        /// Steps are under way.
        Progressing,
        /// The instance is being torn down.
        Deleting,
        /// `spec.paused` is true.
        PausedBySpec,
        /// The hostname's certificate is being issued.
        CertificatePending,
        /// The machine is in a transient state.
        MachineSettling,
        /// A machine is being destroyed.
        MachineDestroying,
        /// The app is being deleted.
        AppDeleting,
        /// The resource vanished under a step (drift): observe again.
        ResourceVanished,
        /// The data volume is in another region than the spec asks (moving is unsupported).
        RegionChangeUnsupported,
        // Error classes of failed steps.
        /// Fly: the resource does not exist.
        NotFound,
        /// Fly refused the API token.
        FlyUnauthorized,
        /// Fly: the resource belongs to someone else.
        FlyForbidden,
        /// Fly: a conflict (version, host capacity).
        FlyConflict,
        /// Fly: someone else holds the machine's lease.
        LeaseHeld,
        /// Fly: not in a state that allows the operation yet.
        FlyPrecondition,
        /// Fly: no capacity in the region or on the host.
        RegionCapacity,
        /// Fly: rate limited (a 429 from Fly).
        FlyRateLimited,
        /// Waiting for our own share of Fly's rate limits or a place in the organization's line
        /// (not a failure: it never raises the backoff).
        FlyThrottled,
        /// Fly kept failing, so calls are held until a probe sees it answer again.
        FlyUnavailable,
        /// The reconcile lost its work lease and stopped before changing anything more.
        LeaseLost,
        /// Fly: a 5xx, a timeout or a transport failure.
        FlyTransient,
        /// Fly rejected the request (retrying cannot help).
        FlyRejected,
        /// Fly's answer could not be understood.
        FlyBadResponse,
        /// The DNS provider is unavailable (network, 5xx, 429).
        DnsUnavailable,
        /// The DNS provider refused the request (token, record, zone).
        DnsRejected,
        /// Pairing the controller's own device failed.
        ControllerPairingFailed,
        /// A gateway step failed.
        GatewayError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_variant_names() {
        for t in ConditionType::ALL {
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::Value::String(t.as_str().to_owned()));
            assert_eq!(serde_json::from_value::<ConditionType>(json).unwrap(), *t);
        }
        assert_eq!(ConditionType::AppReady.as_str(), "AppReady");
        assert_eq!(
            Reason::TrustedProxyMisconfigured.as_str(),
            "TrustedProxyMisconfigured"
        );
    }

    #[test]
    fn values_from_a_newer_version_read_as_unknown() {
        let t: ConditionType = serde_json::from_str("\"SomethingNewReady\"").unwrap();
        assert_eq!(t, ConditionType::Unknown);
        let r: Reason = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(r, Reason::Unknown);
    }
}
