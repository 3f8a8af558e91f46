//! `GET /v1/agent/host`: the machine the agent runs on, in Consul's JSON (its
//! `debug.HostInfo`, whose parts are gopsutil's structs with their lowerCamel keys),
//! read from /proc, /sys, /etc/os-release and `statvfs` (Linux). A part that cannot be
//! read is `null` and its reason is in `Errors`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Consul's `DiskUsagePath`: the file system reported is the root's.
const DISK_PATH: &str = "/";

/// Everything `/v1/agent/host` answers.
pub fn host_info() -> Value {
    let mut errors = Vec::new();
    let mut part = |what: &str, read: Result<Value, String>| match read {
        Ok(value) => value,
        Err(e) => {
            errors.push(Value::String(format!("{what}: {e}")));
            Value::Null
        }
    };
    let memory = part("memory", read("/proc/meminfo").map(|t| memory(&t)));
    let cpu = part("cpu", read("/proc/cpuinfo").map(|t| cpus(&t)));
    let host = part("host", host());
    let disk = part("disk", disk(DISK_PATH));
    let collected = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    json!({
        "Memory": memory,
        "CPU": cpu,
        "Host": host,
        "Disk": disk,
        "CollectionTime": i64::try_from(collected).unwrap_or(i64::MAX),
        "Errors": if errors.is_empty() { Value::Null } else { Value::Array(errors) },
    })
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

/// `/proc/meminfo` as gopsutil's `VirtualMemoryStat`, in bytes.
pub(crate) fn memory(meminfo: &str) -> Value {
    let kb: BTreeMap<&str, u64> = meminfo
        .lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((key.trim(), n))
        })
        .collect();
    let bytes = |key: &str| kb.get(key).copied().unwrap_or(0) * 1024;
    let pages = |key: &str| kb.get(key).copied().unwrap_or(0);
    let total = bytes("MemTotal");
    let free = bytes("MemFree");
    let buffers = bytes("Buffers");
    let cached = bytes("Cached") + bytes("SReclaimable");
    let available = if kb.contains_key("MemAvailable") {
        bytes("MemAvailable")
    } else {
        free + buffers + cached
    };
    let used = total.saturating_sub(free + buffers + cached);
    let used_percent = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64 * 100.0
    };
    json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": used_percent,
        "free": free,
        "active": bytes("Active"),
        "inactive": bytes("Inactive"),
        "wired": 0,
        "laundry": 0,
        "buffers": buffers,
        "cached": cached,
        "writeBack": bytes("Writeback"),
        "dirty": bytes("Dirty"),
        "writeBackTmp": bytes("WritebackTmp"),
        "shared": bytes("Shmem"),
        "slab": bytes("Slab"),
        "sreclaimable": bytes("SReclaimable"),
        "sunreclaim": bytes("SUnreclaim"),
        "pageTables": bytes("PageTables"),
        "swapCached": bytes("SwapCached"),
        "commitLimit": bytes("CommitLimit"),
        "committedAS": bytes("Committed_AS"),
        "highTotal": bytes("HighTotal"),
        "highFree": bytes("HighFree"),
        "lowTotal": bytes("LowTotal"),
        "lowFree": bytes("LowFree"),
        "swapTotal": bytes("SwapTotal"),
        "swapFree": bytes("SwapFree"),
        "mapped": bytes("Mapped"),
        "vmallocTotal": bytes("VmallocTotal"),
        "vmallocUsed": bytes("VmallocUsed"),
        "vmallocChunk": bytes("VmallocChunk"),
        "hugePagesTotal": pages("HugePages_Total"),
        "hugePagesFree": pages("HugePages_Free"),
        "hugePagesRsvd": pages("HugePages_Rsvd"),
        "hugePagesSurp": pages("HugePages_Surp"),
        "hugePageSize": bytes("Hugepagesize"),
        "anonHugePages": bytes("AnonHugePages"),
    })
}

/// `/proc/cpuinfo` as gopsutil's `[]InfoStat`, one per logical CPU.
pub(crate) fn cpus(cpuinfo: &str) -> Value {
    let mut out = Vec::new();
    for block in cpuinfo.split("\n\n") {
        let fields: BTreeMap<&str, &str> = block
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                Some((key.trim(), value.trim()))
            })
            .collect();
        let Some(index) = fields.get("processor").and_then(|p| p.parse::<i64>().ok()) else {
            continue;
        };
        let text = |key: &str| fields.get(key).copied().unwrap_or("").to_string();
        let int = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let flags: Vec<&str> = fields
            .get("flags")
            .map(|f| f.split_whitespace().collect())
            .unwrap_or_default();
        out.push(json!({
            "cpu": index,
            "vendorId": text("vendor_id"),
            "family": text("cpu family"),
            "model": text("model"),
            "stepping": int("stepping"),
            "physicalId": text("physical id"),
            "coreId": text("core id"),
            "cores": int("cpu cores").max(1),
            "modelName": text("model name"),
            "mhz": fields.get("cpu MHz").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
            "cacheSize": int("cache size"),
            "flags": flags,
            "microcode": text("microcode"),
        }));
    }
    Value::Array(out)
}

/// gopsutil's `host.InfoStat`.
fn host() -> Result<Value, String> {
    let uptime: f64 = read("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("/proc/uptime: no uptime")?;
    let boot_time: u64 = read("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|s| s.trim().parse().ok())
        .ok_or("/proc/stat: no btime")?;
    let procs = std::fs::read_dir("/proc")
        .map_err(|e| format!("reading /proc: {e}"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let release = os_release_fields(&os_release);
    let field = |key: &str| release.get(key).cloned().unwrap_or_default();
    let family = release
        .get("ID_LIKE")
        .and_then(|like| like.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| field("ID"));
    let host_id = ["/sys/class/dmi/id/product_uuid", "/etc/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|id| id.trim().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(json!({
        "hostname": super::runtime::hostname(),
        "uptime": uptime as u64,
        "bootTime": boot_time,
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": field("ID"),
        "platformFamily": family,
        "platformVersion": field("VERSION_ID"),
        "kernelVersion": read("/proc/sys/kernel/osrelease")?.trim(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": "",
        "virtualizationRole": "",
        "hostId": host_id,
    }))
}

/// `KEY=value` lines, quotes removed.
pub(crate) fn os_release_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            Some((
                key.trim().to_string(),
                value.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

/// gopsutil's `disk.UsageStat` of the file system holding `path`.
fn disk(path: &str) -> Result<Value, String> {
    let c_path = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: statvfs writes only into the struct we own; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(format!(
            "statvfs {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let block = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * block;
    let free = stat.f_bavail as u64 * block;
    let used = (stat.f_blocks as u64).saturating_sub(stat.f_bfree as u64) * block;
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64 * 100.0
        }
    };
    let inodes_total = stat.f_files as u64;
    let inodes_free = stat.f_ffree as u64;
    let inodes_used = inodes_total.saturating_sub(inodes_free);
    let fstype = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mount, fs) = (f.next()?, f.next()?, f.next()?);
            (mount == path).then(|| fs.to_string())
        })
        .next_back()
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("path".into(), path.into());
    out.insert("fstype".into(), fstype.into());
    out.insert("total".into(), total.into());
    out.insert("free".into(), free.into());
    out.insert("used".into(), used.into());
    out.insert("usedPercent".into(), percent(used, used + free).into());
    out.insert("inodesTotal".into(), inodes_total.into());
    out.insert("inodesUsed".into(), inodes_used.into());
    out.insert("inodesFree".into(), inodes_free.into());
    out.insert(
        "inodesUsedPercent".into(),
        percent(inodes_used, inodes_total).into(),
    );
    Ok(Value::Object(out))
}
