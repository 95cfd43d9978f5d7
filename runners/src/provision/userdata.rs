//! The user data a node's instance boots with: mount the data volume, install
//! the artifact (an S3 archive or a container image), write a systemd unit with
//! the node's args and environment and `--data-dir` on the data volume, and
//! start it; with `logs: cloudwatch`, install the CloudWatch agent and ship
//! the unit's journal. Safe to run again (every step checks before it acts).

use api_types::names;
use api_types::node::{NodeLogs, NodeSpec};

/// Where the data volume is attached (Nitro instances show it as an NVMe
/// device; the script resolves that).
pub const DATA_DEVICE: &str = "/dev/sdf";

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn systemd_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\"").replace('%', "%%"))
}

/// Where the CloudWatch agent is installed.
const AGENT_DIR: &str = "/opt/aws/amazon-cloudwatch-agent";

/// The part of the boot script that ships the unit's journal to CloudWatch
/// Logs: the agent ships files, so a small unit follows the journal of the
/// software's unit into `/var/log/mooring/<unit>.log` (resuming from its
/// cursor after a restart), and the agent sends that file to the node's log
/// group, one stream per instance.
fn cloudwatch_logs(namespace: &str, name: &str, unit: &str) -> String {
    let group = names::node_log_group(namespace, name);
    format!(
        r#"
# Logs: the journal of {unit}, shipped by the CloudWatch agent to {group}.
if [ ! -x {AGENT_DIR}/bin/amazon-cloudwatch-agent-ctl ]; then
  if command -v dnf >/dev/null; then
    dnf install -y amazon-cloudwatch-agent
  elif command -v yum >/dev/null; then
    yum install -y amazon-cloudwatch-agent
  else
    arch=$(dpkg --print-architecture)
    curl -fsSL -o /tmp/amazon-cloudwatch-agent.deb "https://amazoncloudwatch-agent.s3.amazonaws.com/ubuntu/$arch/latest/amazon-cloudwatch-agent.deb"
    dpkg -i -E /tmp/amazon-cloudwatch-agent.deb
  fi
fi
mkdir -p /var/log/mooring /var/lib/mooring {AGENT_DIR}/etc
# journalctl resumes from its cursor where it can (systemd 242 and later);
# older ones start at the newest line.
cat > /var/lib/mooring/{unit}-journal.sh <<'MOORING_JOURNAL'
#!/bin/sh
if journalctl --help 2>&1 | grep -q -- --cursor-file; then
  exec journalctl -u {unit}.service -f -o short-iso --cursor-file=/var/lib/mooring/{unit}.journal-cursor >> /var/log/mooring/{unit}.log
fi
exec journalctl -u {unit}.service -f -o short-iso -n 0 >> /var/log/mooring/{unit}.log
MOORING_JOURNAL
chmod 0755 /var/lib/mooring/{unit}-journal.sh
cat > /etc/systemd/system/{unit}-journal.service <<'MOORING_UNIT'
[Unit]
Description=The journal of {unit}, as a file for the CloudWatch agent
After={unit}.service

[Service]
ExecStart=/var/lib/mooring/{unit}-journal.sh
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
MOORING_UNIT
cat > {AGENT_DIR}/etc/mooring.json <<'MOORING_AGENT'
{{"logs": {{"logs_collected": {{"files": {{"collect_list": [{{"file_path": "/var/log/mooring/{unit}.log", "log_group_name": "{group}", "log_stream_name": "{{instance_id}}"}}]}}}}}}}}
MOORING_AGENT
systemctl daemon-reload
systemctl enable --now {unit}-journal.service
# Appended to whatever the AMI configures already.
{AGENT_DIR}/bin/amazon-cloudwatch-agent-ctl -a append-config -m ec2 -s -c file:{AGENT_DIR}/etc/mooring.json
"#
    )
}

/// Renders the boot script of a node.
pub fn render(namespace: &str, name: &str, spec: &NodeSpec) -> String {
    let sw = &spec.software;
    let unit = format!("mooring-{}", sw.name);
    let data_dir = format!("/var/lib/mooring/{}", sw.name);
    let install_dir = format!("/opt/mooring/{}/{}", sw.name, sw.version);
    let is_image = !sw.artifact.starts_with("s3://");
    let args: Vec<String> = sw.args.iter().map(|a| systemd_quote(a)).collect();
    let exec = if is_image {
        format!(
            "/usr/bin/docker run --rm --name {unit} --network host --env-file /etc/mooring/{unit}.env -v {data_dir}:/data {} {} --data-dir=/data",
            sw.artifact,
            args.join(" ")
        )
    } else {
        format!("{install_dir}/{} {} --data-dir={data_dir}", sw.name, args.join(" "))
    };
    let env: String = spec.env.iter().map(|(k, v)| format!("{k}={}\n", systemd_quote(v))).collect();
    let install = if is_image {
        format!(
            "command -v docker >/dev/null || (command -v dnf >/dev/null && dnf install -y docker || (apt-get update && apt-get install -y docker.io))\nsystemctl enable --now docker\ndocker pull {}\n",
            shell_quote(&sw.artifact)
        )
    } else {
        format!(
            "if [ ! -x {install_dir}/{name_bin} ]; then\n  mkdir -p {install_dir}\n  aws s3 cp {artifact} /tmp/mooring-artifact\n  case {artifact} in\n    *.tar.gz|*.tgz) tar -xzf /tmp/mooring-artifact -C {install_dir} ;;\n    *.zip) unzip -o /tmp/mooring-artifact -d {install_dir} ;;\n    *) install -m 0755 /tmp/mooring-artifact {install_dir}/{name_bin} ;;\n  esac\n  chmod +x {install_dir}/{name_bin}\nfi\n",
            artifact = shell_quote(&sw.artifact),
            name_bin = sw.name
        )
    };
    let logs = match spec.logs {
        Some(NodeLogs::Cloudwatch) => cloudwatch_logs(namespace, name, &unit),
        None => String::new(),
    };
    format!(
        r#"#!/bin/bash
# Rendered by Mooring for node {namespace}/{name}: {sw_name} {version}.
set -euo pipefail
DATA_DIR={data_dir}

# The data volume: wait for it, format it once, mount it by UUID.
dev=""
for _ in $(seq 1 180); do
  if [ -b {DATA_DEVICE} ]; then dev={DATA_DEVICE}; break; fi
  for d in /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*; do
    [ -e "$d" ] || continue
    case "$d" in *-part*) continue ;; esac
    target=$(readlink -f "$d")
    if ! lsblk -no MOUNTPOINT "$target" | grep -q .; then dev="$target"; fi
  done
  [ -n "$dev" ] && break
  sleep 2
done
[ -n "$dev" ] || {{ echo "data volume not attached" >&2; exit 1; }}
blkid "$dev" >/dev/null || mkfs -t xfs "$dev"
mkdir -p "$DATA_DIR"
uuid=$(blkid -s UUID -o value "$dev")
grep -q "$uuid" /etc/fstab || echo "UUID=$uuid $DATA_DIR xfs defaults,nofail 0 2" >> /etc/fstab
mountpoint -q "$DATA_DIR" || mount "$DATA_DIR"

# The software.
{install}
mkdir -p /etc/mooring
cat > /etc/mooring/{unit}.env <<'MOORING_ENV'
{env}MOORING_ENV

cat > /etc/systemd/system/{unit}.service <<'MOORING_UNIT'
[Unit]
Description={sw_name} {version} (Mooring node {namespace}/{name})
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=/etc/mooring/{unit}.env
ExecStart={exec}
Restart=always
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
MOORING_UNIT

systemctl daemon-reload
systemctl enable --now {unit}.service
systemctl restart {unit}.service
{logs}"#,
        sw_name = sw.name,
        version = sw.version,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(artifact: &str) -> NodeSpec {
        serde_json::from_value(serde_json::json!({
            "software": {"name": "pulse", "version": "1.4.2", "artifact": artifact, "args": ["--p2p-port=4001"]},
            "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
            "env": {"RUST_LOG": "info", "QUOTE": "a\"b"}
        }))
        .unwrap()
    }

    #[test]
    fn s3_artifact_installs_a_binary_with_a_unit_and_data_dir() {
        let s = render("default", "pulse-1", &spec("s3://pulse-artifacts/pulse-1.4.2.tar.gz"));
        assert!(s.starts_with("#!/bin/bash"));
        assert!(s.contains("aws s3 cp 's3://pulse-artifacts/pulse-1.4.2.tar.gz'"));
        assert!(s.contains(
            "ExecStart=/opt/mooring/pulse/1.4.2/pulse \"--p2p-port=4001\" --data-dir=/var/lib/mooring/pulse"
        ));
        assert!(s.contains("QUOTE=\"a\\\"b\"\nRUST_LOG=\"info\"\n"), "{s}");
        assert!(s.contains("systemctl enable --now mooring-pulse.service"));
    }

    #[test]
    fn cloudwatch_logs_ship_the_units_journal_to_the_nodes_log_group() {
        let plain = render("chain", "pulse-1", &spec("s3://pulse-artifacts/pulse-1.4.2.tar.gz"));
        assert!(!plain.contains("amazon-cloudwatch-agent"), "only when asked");
        let mut s = spec("s3://pulse-artifacts/pulse-1.4.2.tar.gz");
        s.logs = Some(NodeLogs::Cloudwatch);
        let script = render("chain", "pulse-1", &s);
        assert!(script.starts_with(&plain), "the software comes first, unchanged");
        assert!(script.contains("journalctl -u mooring-pulse.service -f"));
        let config = script.lines().find(|l| l.starts_with("{\"logs\"")).expect("the agent's configuration");
        let config: serde_json::Value = serde_json::from_str(config).expect("valid JSON");
        let file = &config["logs"]["logs_collected"]["files"]["collect_list"][0];
        assert_eq!(file["log_group_name"], "/mooring/chain/nodes/pulse-1");
        assert_eq!(file["log_stream_name"], "{instance_id}", "the agent's placeholder, one stream per instance");
        assert_eq!(file["file_path"], "/var/log/mooring/mooring-pulse.log");
        assert!(script.contains("amazon-cloudwatch-agent-ctl -a append-config -m ec2 -s"), "keeps the AMI's own");
    }

    #[test]
    fn image_artifact_runs_under_docker_with_the_volume() {
        let s = render("default", "pulse-1", &spec("ghcr.io/acme/pulse:1.4.2"));
        assert!(s.contains("docker pull 'ghcr.io/acme/pulse:1.4.2'"));
        assert!(
            s.contains("-v /var/lib/mooring/pulse:/data ghcr.io/acme/pulse:1.4.2 \"--p2p-port=4001\" --data-dir=/data")
        );
    }
}
