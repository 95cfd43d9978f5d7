//! The Route53 facade of the AWS SDK (`runners::aws::route53`) and a node
//! set's record sync (`runners::workload::discovery`) against moto over HTTP:
//! records are created with their ownership markers, follow a replaced
//! member's new address, leave someone else's record alone, and go when
//! nothing is wanted.
//!
//! Needs moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`); start
//! it with `eval "$(deploy/local/stack.sh up)"`. Each test makes its own zone.

mod common;

use std::collections::BTreeMap;

use common::{require_moto, settings};
use runners::cloud::ErrorKind;
use runners::cloud::dns::{RecordChange, RecordCursor, RecordSet, RecordType};
use runners::workload::discovery::{self, Wanted, marker_name, marker_value};

/// A private hosted zone `NAME.internal` in moto's default VPC; returns its id
/// and name.
async fn private_zone(config: &aws_config::SdkConfig) -> (String, String) {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpcs = ec2.describe_vpcs().send().await.expect("moto VPCs");
    let vpc = vpcs.vpcs()[0].vpc_id.clone().expect("a VPC id");
    let name = format!("z{}.internal", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let out = aws_sdk_route53::Client::new(config)
        .create_hosted_zone()
        .name(&name)
        .caller_reference(uuid::Uuid::new_v4().to_string())
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(vpc)
                .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                .build(),
        )
        .hosted_zone_config(aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build())
        .send()
        .await
        .expect("moto makes a private zone");
    let id = out.hosted_zone().expect("a zone").id().trim_start_matches("/hostedzone/").to_string();
    (id, name)
}

fn a(name: &str, ips: &[&str]) -> RecordSet {
    RecordSet { name: name.into(), kind: RecordType::A, ttl: 60, values: ips.iter().map(|s| s.to_string()).collect() }
}

fn a_records(records: &[RecordSet]) -> BTreeMap<String, Vec<String>> {
    records.iter().filter(|r| r.kind == RecordType::A).map(|r| (r.name.clone(), r.values.clone())).collect()
}

#[tokio::test]
async fn a_sets_records_are_made_followed_and_removed_and_others_are_left_alone() {
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    let dns = runners::aws::node_cloud_from(&config).dns;
    let (zone, zone_name) = private_zone(&config).await;
    let domain = format!("pulse.{zone_name}");
    let m0 = format!("pulse-0.{domain}");
    let m1 = format!("pulse-1.{domain}");
    let uid = uuid::Uuid::new_v4().to_string();

    // Someone else's records: one at member 1's name, one beside, and a
    // CNAME where member 2's would go (read as the other kind).
    let theirs = a(&m1, &["192.168.9.9"]);
    let beside = a(&format!("db.{zone_name}"), &["192.168.1.1"]);
    dns.change(&zone, &[RecordChange::Create(theirs.clone()), RecordChange::Create(beside.clone())]).await.unwrap();
    let m2 = format!("pulse-2.{domain}");
    aws_sdk_route53::Client::new(&config)
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Create)
                        .resource_record_set(
                            aws_sdk_route53::types::ResourceRecordSet::builder()
                                .name(&m2)
                                .r#type(aws_sdk_route53::types::RrType::Cname)
                                .ttl(60)
                                .resource_records(
                                    aws_sdk_route53::types::ResourceRecord::builder()
                                        .value("db.example")
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let wanted: Wanted = BTreeMap::from([
        (m0.clone(), Some(vec!["10.0.0.1".to_string()])),
        (m1.clone(), Some(vec!["10.0.0.2".to_string()])),
        (m2.clone(), Some(vec!["10.0.0.3".to_string()])),
        (domain.clone(), Some(vec!["10.0.0.2".to_string(), "10.0.0.1".to_string()])),
    ]);
    let plan = discovery::sync(dns.as_ref(), &zone, &domain, &uid, 60, &wanted, false).await.unwrap();
    assert_eq!(plan.conflicts, [m1.clone(), m2.clone()], "someone else's names are conflicts");
    let records = discovery::records_under(dns.as_ref(), &zone, &domain).await.unwrap();
    let got = a_records(&records);
    assert_eq!(got[&m0], ["10.0.0.1"]);
    assert_eq!(got[&m1], ["192.168.9.9"], "left alone");
    assert_eq!(got[&domain], ["10.0.0.1", "10.0.0.2"]);
    let marker = records.iter().find(|r| r.name == marker_name(&m0)).expect("a marker beside the record");
    assert_eq!(marker.values, [marker_value(&uid)], "the TXT value round-trips without its quotes");

    // A replaced member: its record follows the new address; a second pass changes nothing.
    let mut replaced = wanted.clone();
    replaced.insert(m0.clone(), Some(vec!["10.0.0.7".to_string()]));
    replaced.insert(domain.clone(), Some(vec!["10.0.0.7".to_string()]));
    discovery::sync(dns.as_ref(), &zone, &domain, &uid, 60, &replaced, false).await.unwrap();
    let got = a_records(&discovery::records_under(dns.as_ref(), &zone, &domain).await.unwrap());
    assert_eq!(got[&m0], ["10.0.0.7"]);
    assert_eq!(got[&domain], ["10.0.0.7"]);
    let again = discovery::sync(dns.as_ref(), &zone, &domain, &uid, 60, &replaced, false).await.unwrap();
    assert!(again.changes.is_empty(), "settled: {:?}", again.changes);

    // Nothing wanted: every record of the set goes, the others stay.
    discovery::sync(dns.as_ref(), &zone, &domain, &uid, 60, &Wanted::new(), false).await.unwrap();
    let left = discovery::records_under(dns.as_ref(), &zone, &zone_name).await.unwrap();
    // The zone's own NS and SOA records are the other kind.
    let mut left: Vec<String> = left.into_iter().filter(|r| r.kind != RecordType::Other).map(|r| r.name).collect();
    left.sort();
    assert_eq!(left, [beside.name, theirs.name], "only someone else's A records are left");
}

#[tokio::test]
async fn a_zone_that_does_not_exist_is_a_missing_reference() {
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    let dns = runners::aws::node_cloud_from(&config).dns;
    let err = dns.records("ZNOSUCHZONE0000", &RecordCursor::at("pulse.internal")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingReference, "{err}");
}
