//! Fan-out at any size: a tenant one page per work item, a broadcast one chain per scan
//! segment, and every connection exactly once whatever the sizes.

use super::*;

#[tokio::test]
async fn a_tenant_is_delivered_one_page_per_work_item_continuation_first() {
    let rig = rig_with(ScriptedPoster::new(), paged(10));
    connect_many(&rig, "acme", 25).await;
    connect_many(&rig, "globex", 5).await;
    let outcome = rig
        .publish(
            "s",
            json!({"id":"m","target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(outcome.reports[0].matched, 10);
    assert_eq!(rig.poster.delivered().len(), 10, "one page only");
    let continuation = rig.work.drain();
    assert_eq!(continuation.len(), 1);
    let Some(Ok(item)) = WorkItem::from_body(&continuation[0].1) else {
        panic!("not a work item")
    };
    assert!(matches!(item.work, Work::Page { start: Some(_), .. }));
    let reports = rig
        .run(vec![InboundMessage {
            message_id: "c".into(),
            body: continuation[0].1.clone(),
            receive_count: 1,
        }])
        .await;
    assert_eq!(
        reports.iter().map(|r| r.matched).collect::<Vec<_>>(),
        [10, 5]
    );
    let to = rig.poster.delivered_to();
    assert_eq!(to.len(), 25);
    assert!(to.iter().all(|c| c.starts_with("acme-")));
    let unique: std::collections::BTreeSet<_> = to.iter().collect();
    assert_eq!(unique.len(), 25, "each once");
}

#[tokio::test]
async fn a_broadcast_starts_one_chain_per_segment() {
    let rig = rig_with(
        ScriptedPoster::new(),
        PublisherConfig {
            scan_segments: 3,
            ..paged(4)
        },
    );
    connect_many(&rig, "acme", 20).await;
    connect_many(&rig, "globex", 20).await;
    rig.publish("s", json!({"target":{"type":"broadcast"},"data":1}))
        .await;
    let items: Vec<WorkItem> = rig
        .work
        .enqueued()
        .iter()
        .filter_map(|(_, body)| WorkItem::from_body(body).and_then(Result::ok))
        .collect();
    let segments: Vec<u32> = items
        .iter()
        .filter_map(|item| match &item.work {
            Work::Page {
                scope: PageScope::Segment { segment, .. },
                start: None,
            } => Some(*segment),
            _ => None,
        })
        .collect();
    assert_eq!(segments, [1, 2], "segment 0 runs in place");
    rig.run(vec![]).await;
    rig.run(
        rig.work
            .drain()
            .into_iter()
            .map(|(_, body)| InboundMessage {
                message_id: "w".into(),
                body,
                receive_count: 1,
            })
            .collect(),
    )
    .await;
    assert_eq!(rig.poster.delivered().len(), 40);
}

mod paging_property {
    use proptest::prelude::*;

    use crate::roster::{MemoryRosterStore, RosterStore};
    use crate::testkit::{check_paged_fanout, spread_records};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        /// Every matching connection exactly once, nobody else, one page per item.
        #[test]
        fn every_work_item_to_completion_delivers_each_connection_once(
            size in 0usize..5_000,
            tenants in 1usize..6,
            page_size in 1usize..1_500,
            segments in 1u32..9,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let roster = std::sync::Arc::new(MemoryRosterStore::new());
                let records = spread_records(size, tenants);
                for record in &records {
                    roster.put(record).await.unwrap();
                }
                check_paged_fanout(roster, &records, page_size, segments).await;
            });
        }
    }
}
