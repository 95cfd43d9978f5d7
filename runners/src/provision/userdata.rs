//! The user data a node's instance boots with: mount the data volume, install
//! the artifact (an S3 archive or a container image), write a systemd unit with
//! the node's args and environment and `--data-dir` on the data volume, and
//! start it. Safe to run again (every step checks before it acts).

use api_types::node::NodeSpec;

/// Where the data volume is attached (Nitro instances show it as an NVMe
/// device; the script resolves that).
pub const DATA_DEVICE: &str = "/dev/sdf";

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn systemd_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\"").replace('%', "%%"))
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
"#,
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
    fn image_artifact_runs_under_docker_with_the_volume() {
        let s = render("default", "pulse-1", &spec("ghcr.io/acme/pulse:1.4.2"));
        assert!(s.contains("docker pull 'ghcr.io/acme/pulse:1.4.2'"));
        assert!(
            s.contains("-v /var/lib/mooring/pulse:/data ghcr.io/acme/pulse:1.4.2 \"--p2p-port=4001\" --data-dir=/data")
        );
    }
}
