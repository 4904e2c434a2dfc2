//! Process metrics (memory, CPU time, file descriptors, start time, threads), read from
//! `/proc/self` at scrape time. Elsewhere than Linux nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of the times in `/proc/*/stat` (the kernel's `USER_HZ`, 100 on every
/// architecture we run on: x86_64 and arm64).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub resident_memory_bytes: f64,
    /// Virtual memory size.
    pub virtual_memory_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors (`None` when unlimited).
    pub max_fds: Option<f64>,
    /// Start of the process, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Threads of the process.
    pub threads: f64,
}

impl ProcessSample {
    /// Reads `/proc/self`; `None` where there is no procfs.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| boot_time(&s))?;
        let mut sample = parse_stat(&stat, boot_time)?;
        sample.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        sample.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| max_open_files(&l));
        if let Some(rss) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| status_kib(&s, "VmRSS:"))
        {
            sample.resident_memory_bytes = rss * 1024.0;
        }
        Some(sample)
    }
}

/// `btime` of `/proc/stat`: boot time in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// CPU time, start time, threads and sizes from `/proc/self/stat` (see proc(5)); the command
/// name in parentheses may itself contain spaces and parentheses, so fields count from the last
/// `)`.
fn parse_stat(stat: &str, boot_time: f64) -> Option<ProcessSample> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let vsize = field(23)?;
    let rss_pages = field(24)?;
    Some(ProcessSample {
        cpu_seconds: (utime + stime) / USER_HZ,
        resident_memory_bytes: rss_pages * 4096.0,
        virtual_memory_bytes: vsize,
        open_fds: 0.0,
        max_fds: None,
        start_time_seconds: boot_time + start_ticks / USER_HZ,
        threads,
    })
}

/// A `Key:   N kB` line of `/proc/self/status`, in KiB.
fn status_kib(status: &str, key: &str) -> Option<f64> {
    let rest = status.lines().find_map(|l| l.strip_prefix(key))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Reports [`ProcessSample`] on every scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessSample::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time of the controller process",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory of the controller process",
                Some(s.resident_memory_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory of the controller process",
                Some(s.virtual_memory_bytes),
            ),
            (
                "process_open_fds",
                "Open file descriptors of the controller process",
                Some(s.open_fds),
            ),
            (
                "process_max_fds",
                "Soft limit on open file descriptors of the controller process",
                s.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start of the controller process, seconds since the Unix epoch",
                Some(s.start_time_seconds),
            ),
            (
                "process_threads",
                "Threads of the controller process",
                Some(s.threads),
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as proc(5) warns.
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 \
                    17 0 123456 987654321 3000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 \
                    1 0 0 0 0 0";
        let s = parse_stat(stat, 1_700_000_000.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 17.0);
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 1234.56);
        assert_eq!(s.virtual_memory_bytes, 987_654_321.0);
        assert_eq!(s.resident_memory_bytes, 3000.0 * 4096.0);
    }

    #[test]
    fn status_limits_and_boot_time() {
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t   2048 kB\n", "VmRSS:"),
            Some(2048.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn this_process_reads_on_linux() {
        if cfg!(target_os = "linux") {
            let s = ProcessSample::read().expect("procfs");
            assert!(s.resident_memory_bytes > 0.0);
            assert!(s.open_fds > 0.0);
            assert!(s.threads >= 1.0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!(s.start_time_seconds <= now + 1.0);
            assert!(s.start_time_seconds > now - 86_400.0 * 365.0);
        }
    }
}
