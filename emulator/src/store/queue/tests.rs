//! Tests of the queue store, in process: ids, the purger, the index at open, expiry.

mod ids {
    use super::super::*;

    #[test]
    fn message_ids_round_trip() {
        let id = message_id(42, 0xdead_beef);
        assert_eq!(id.len(), 36);
        assert_eq!(parse_message_id(&id).ok(), Some((42, 0xdead_beef)));
        assert_eq!(
            parse_message_id("not-an-id").map_err(|e| e.code),
            Err(ErrorCode::MessageNotFound)
        );
    }
}

mod store_tests {
    use crate::clock::Clock;
    use crate::store::{keys, Store};

    #[tokio::test]
    async fn purge_is_budgeted_and_complete() {
        let store = Store::open(None, 8 << 20, Clock::new()).unwrap();
        store
            .queues
            .create_queue("a", "q1", Vec::new())
            .await
            .unwrap();
        for i in 0..1500 {
            store
                .queues
                .put_message("a", "q1", format!("m{i}"), 0, None)
                .await
                .unwrap();
        }
        store.queues.delete_queue("a", "q1").await.unwrap();
        let mut rounds = 0;
        while store.queues.purge_orphans(1024).unwrap() > 0
            || store.core.data.scan_prefix([keys::PURGE]).next().is_some()
        {
            rounds += 1;
            assert!(rounds < 10, "the purge makes progress");
        }
        assert!(
            rounds >= 2,
            "a budget of 1024 keys needs several rounds for 1500 keys"
        );
        assert!(store
            .core
            .data
            .scan_prefix([keys::MESSAGE])
            .next()
            .is_none());
    }

    #[test]
    fn index_reads_the_visibility_time_of_a_record() {
        use crate::store::codec::{decode_borrowed, encode};
        use crate::store::queue::records::MessageRecord;
        let m = MessageRecord {
            nonce: 7,
            text: "x".repeat(70_000),
            inserted_ms: 1,
            expires_ms: 2,
            visible_ms: 1_234_567,
            dequeue_count: 3,
            pop_receipt: "r".into(),
        };
        let bytes = encode(&m);
        let times: crate::store::queue::MessageTimes = decode_borrowed(&bytes).unwrap();
        assert_eq!(times.visible_ms, 1_234_567);
    }

    #[tokio::test]
    async fn index_is_rebuilt_at_open_and_format_1_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::new();
        let ids = {
            let store = Store::open(Some(dir.path()), 8 << 20, clock.clone()).unwrap();
            store
                .queues
                .create_queue("a", "q", Vec::new())
                .await
                .unwrap();
            let mut ids = Vec::new();
            for (i, vis) in [(0, 5_000), (1, 0), (2, 1_000)] {
                let m = store
                    .queues
                    .put_message("a", "q", format!("m{i}"), vis, None)
                    .await
                    .unwrap();
                ids.push(m.id);
            }
            // What a format-1 store also held.
            store
                .core
                .data
                .insert([keys::LEGACY_VISIBLE, 1, 2], &[])
                .unwrap();
            store
                .core
                .data
                .insert([keys::LEGACY_COUNT, 1], &[0u8; 8])
                .unwrap();
            store
                .core
                .db
                .insert(crate::store::FORMAT_KEY, &1u64.to_be_bytes())
                .unwrap();
            store.close();
            ids
        };
        let store = Store::open(Some(dir.path()), 8 << 20, clock.clone()).unwrap();
        assert!(store
            .core
            .data
            .scan_prefix([keys::LEGACY_VISIBLE])
            .next()
            .is_none());
        assert!(store
            .core
            .data
            .scan_prefix([keys::LEGACY_COUNT])
            .next()
            .is_none());
        assert_eq!(
            store.queues.queue_info("a", "q").unwrap().approximate_count,
            3
        );
        let now = store
            .queues
            .get_messages("a", "q", 32, 60_000)
            .await
            .unwrap();
        assert_eq!(
            now.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["m1"]
        );
        clock.advance_ms(5_000);
        let later = store
            .queues
            .get_messages("a", "q", 32, 60_000)
            .await
            .unwrap();
        assert_eq!(
            later.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            [ids[2].as_str(), ids[0].as_str()],
            "in the order they became visible"
        );
    }

    #[tokio::test]
    async fn clock_expiry_and_counts() {
        let clock = Clock::new();
        let store = Store::open(None, 8 << 20, clock.clone()).unwrap();
        store
            .queues
            .create_queue("a", "q", Vec::new())
            .await
            .unwrap();
        store
            .queues
            .put_message("a", "q", "short".into(), 0, Some(10_000))
            .await
            .unwrap();
        store
            .queues
            .put_message("a", "q", "long".into(), 0, None)
            .await
            .unwrap();
        assert_eq!(
            store.queues.queue_info("a", "q").unwrap().approximate_count,
            2
        );
        clock.advance_ms(11_000);
        assert_eq!(store.queues.sweep_expired(true).unwrap(), 1);
        assert_eq!(
            store.queues.queue_info("a", "q").unwrap().approximate_count,
            1
        );
        let got = store
            .queues
            .get_messages("a", "q", 32, 30_000)
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            ["long"]
        );
        assert!(
            store
                .queues
                .get_messages("a", "q", 32, 30_000)
                .await
                .unwrap()
                .is_empty(),
            "invisible now"
        );
        clock.advance_ms(31_000);
        let again = store
            .queues
            .get_messages("a", "q", 32, 30_000)
            .await
            .unwrap();
        assert_eq!(again[0].dequeue_count, 2);
    }
}
