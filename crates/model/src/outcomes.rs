//! Fixed names for what the engine reports besides conditions: the kinds of drift it finds and
//! repairs, and the outcomes of pairing approvals. Metrics label values come from these lists,
//! never from instance names.

/// What part of the world had drifted from the spec, for `openclaws_drift_*_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DriftKind {
    /// The app (missing).
    App,
    /// The data volume (missing, an extra one, too small).
    Volume,
    /// The machine's existence or run state (stopped, destroyed, stuck, crashed).
    MachineState,
    /// The machine's config (image, guest size, env, files, metadata).
    MachineConfig,
    /// The app's secrets.
    Secrets,
    /// The app's public addresses.
    Ips,
    /// The hostname's certificate.
    Certificate,
    /// The hostname's DNS record.
    Dns,
    /// Owned fields of the gateway's `openclaw.json`.
    GatewayConfig,
    /// The gateway's health probes.
    GatewayHealth,
    /// The controller's own device pairing.
    Pairing,
    /// The phase changed with nothing above to show for it.
    Other,
}

impl DriftKind {
    /// Every kind (series are created at zero so rates work from the first event).
    pub const ALL: [DriftKind; 12] = [
        DriftKind::App,
        DriftKind::Volume,
        DriftKind::MachineState,
        DriftKind::MachineConfig,
        DriftKind::Secrets,
        DriftKind::Ips,
        DriftKind::Certificate,
        DriftKind::Dns,
        DriftKind::GatewayConfig,
        DriftKind::GatewayHealth,
        DriftKind::Pairing,
        DriftKind::Other,
    ];

    /// The kind named by its label value (as stored in the drift bookkeeping).
    pub fn parse(name: &str) -> Option<DriftKind> {
        DriftKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::App => "app",
            DriftKind::Volume => "volume",
            DriftKind::MachineState => "machine_state",
            DriftKind::MachineConfig => "machine_config",
            DriftKind::Secrets => "secrets",
            DriftKind::Ips => "ips",
            DriftKind::Certificate => "certificate",
            DriftKind::Dns => "dns",
            DriftKind::GatewayConfig => "gateway_config",
            DriftKind::GatewayHealth => "gateway_health",
            DriftKind::Pairing => "pairing",
            DriftKind::Other => "other",
        }
    }
}

/// Every `(policy, result)` pair a pairing approval can be counted under.
pub const PAIRING_OUTCOMES: [(&str, &str); 7] = [
    ("auto", "approved"),
    ("auto", "failed"),
    ("manual", "approved"),
    ("manual", "failed"),
    ("manual", "expired"),
    ("controller", "approved"),
    ("controller", "failed"),
];
