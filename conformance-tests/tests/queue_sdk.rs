//! The Queue service through Microsoft's official Rust SDK (`azure_storage_queue` 1.x),
//! signed with Shared Key (our per-try policy) or an account SAS.
#![allow(clippy::unwrap_used)]

use azure_core::http::headers::HeaderName;
use azure_core::http::{ClientOptions, RetryOptions, StatusCode, Url};
use azure_core::time::{Duration, OffsetDateTime};
use azure_storage_queue::models::*;
use azure_storage_queue::{QueueClient, QueueServiceClient, QueueServiceClientOptions};
use conformance_tests::clients::{self, status_code};
use conformance_tests::{account_sas_query, unique_name, Target};
use futures::TryStreamExt;
use std::collections::{HashMap, HashSet};

fn shared_key_client(t: &Target) -> QueueServiceClient {
    let c = t.creds();
    clients::queue_service(&c.queue_endpoint, &c.account, &c.key)
}

fn sas_client(
    t: &Target,
    resource_types: &str,
    permissions: &str,
    expiry: &str,
) -> QueueServiceClient {
    let c = t.creds();
    let sas = account_sas_query(&c.account, &c.key, "q", resource_types, permissions, expiry);
    let url = Url::parse(&format!("{}?{sas}", c.queue_endpoint)).unwrap();
    let options = ClientOptions {
        retry: RetryOptions::none(),
        ..Default::default()
    };
    QueueServiceClient::new(
        url,
        None,
        Some(QueueServiceClientOptions {
            client_options: options,
            ..Default::default()
        }),
    )
    .unwrap()
}

async fn new_queue(svc: &QueueServiceClient) -> QueueClient {
    let q = svc.queue_client(&unique_name("rq")).unwrap();
    q.create(None).await.unwrap();
    q
}

fn msg(text: &str) -> azure_core::http::RequestContent<QueueMessage, azure_core::http::XmlFormat> {
    QueueMessage {
        message_text: Some(text.to_string()),
    }
    .try_into()
    .unwrap()
}

#[tokio::test]
async fn create_is_idempotent_for_identical_metadata_and_conflicts_otherwise() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = svc.queue_client(&unique_name("rq")).unwrap();
    let meta = HashMap::from([("color".to_string(), "blue".to_string())]);
    let r = q
        .create(Some(QueueClientCreateOptions {
            metadata: Some(meta.clone()),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    let r = q
        .create(Some(QueueClientCreateOptions {
            metadata: Some(meta),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NoContent);
    let other = HashMap::from([("color".to_string(), "green".to_string())]);
    let e = q
        .create(Some(QueueClientCreateOptions {
            metadata: Some(other),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (409, "QueueAlreadyExists".into()));
    q.delete(None).await.unwrap();
    assert!(!q.exists().await.unwrap());
    let e = q.delete(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "QueueNotFound".into()));
}

#[tokio::test]
async fn invalid_queue_names_are_refused() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    for (name, code) in [
        ("ab", "OutOfRangeInput"),
        ("bad--name", "InvalidResourceName"),
        ("-lead", "InvalidResourceName"),
        ("UPPER", "InvalidResourceName"),
    ] {
        let e = svc
            .queue_client(name)
            .unwrap()
            .create(None)
            .await
            .unwrap_err();
        assert_eq!(status_code(&e), (400, code.to_string()), "{name}");
    }
}

#[tokio::test]
async fn metadata_and_approximate_count() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    q.set_metadata(
        &HashMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]),
        None,
    )
    .await
    .unwrap();
    for i in 0..3 {
        q.send_message(msg(&format!("m{i}")), None).await.unwrap();
    }
    let props = q.get_properties(None).await.unwrap();
    assert_eq!(props.approximate_messages_count().unwrap(), Some(3));
    assert_eq!(
        props.metadata().unwrap(),
        HashMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string())
        ])
    );
    // Set replaces the whole set.
    q.set_metadata(&HashMap::from([("c".to_string(), "3".to_string())]), None)
        .await
        .unwrap();
    assert_eq!(
        q.get_properties(None).await.unwrap().metadata().unwrap(),
        HashMap::from([("c".to_string(), "3".to_string())])
    );
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn send_receive_update_delete_round_trip() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    let text = "<hello & \"world\"> ünïcødé";
    let sent = q
        .send_message(msg(text), None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .into_message()
        .unwrap();
    let id = sent.message_id.clone().unwrap();

    let peeked = q
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(peeked.len(), 1);
    assert_eq!(peeked[0].message_text.as_deref(), Some(text));
    assert_eq!(peeked[0].dequeue_count, Some(0));

    let got = q
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            number_of_messages: Some(5),
            visibility_timeout: Some(30),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id.as_deref(), Some(id.as_str()));
    assert_eq!(got[0].dequeue_count, Some(1));
    let receipt = got[0].pop_receipt.clone().unwrap();
    // Invisible now.
    assert!(q
        .receive_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default()
        .is_empty());

    let upd = q
        .update_message(
            &id,
            &receipt,
            0,
            Some(QueueClientUpdateMessageOptions {
                queue_message: Some(msg("updated")),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let new_receipt = upd
        .headers()
        .get_optional_str(&HeaderName::from_static("x-ms-popreceipt"))
        .unwrap()
        .to_string();
    assert_ne!(new_receipt, receipt);
    assert!(upd
        .headers()
        .get_optional_str(&HeaderName::from_static("x-ms-time-next-visible"))
        .is_some());

    // The old receipt is stale now.
    let e = q.delete_message(&id, &receipt, None).await.unwrap_err();
    assert_eq!(status_code(&e), (400, "PopReceiptMismatch".into()));

    let again = q
        .receive_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(again[0].message_text.as_deref(), Some("updated"));
    assert_eq!(again[0].dequeue_count, Some(2));
    q.delete_message(&id, again[0].pop_receipt.as_deref().unwrap(), None)
        .await
        .unwrap();
    let e = q
        .delete_message(&id, again[0].pop_receipt.as_deref().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "MessageNotFound".into()));
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn send_options_ttl_and_visibility() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    let forever = q
        .send_message(
            msg("forever"),
            Some(QueueClientSendMessageOptions {
                message_time_to_live: Some(-1),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .into_message()
        .unwrap();
    assert_eq!(forever.expiration_time.unwrap().year(), 9999);
    let hidden = q
        .send_message(
            msg("hidden"),
            Some(QueueClientSendMessageOptions {
                visibility_timeout: Some(3600),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .into_message()
        .unwrap();
    assert!(hidden.time_next_visible.unwrap() > OffsetDateTime::now_utc() + Duration::minutes(50));
    let peeked = q
        .peek_messages(Some(QueueClientPeekMessagesOptions {
            number_of_messages: Some(32),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(peeked.len(), 1, "the hidden message is not visible");
    // visibility must be below the TTL
    let e = q
        .send_message(
            msg("x"),
            Some(QueueClientSendMessageOptions {
                message_time_to_live: Some(10),
                visibility_timeout: Some(10),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400);
    let e = q
        .send_message(
            msg("x"),
            Some(QueueClientSendMessageOptions {
                message_time_to_live: Some(0),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "InvalidQueryParameterValue".into()));
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn out_of_range_parameters() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    let e = q
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            number_of_messages: Some(33),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (400, "OutOfRangeQueryParameterValue".into())
    );
    let e = q
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            visibility_timeout: Some(0),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (400, "OutOfRangeQueryParameterValue".into())
    );
    let e = q
        .send_message(
            msg("x"),
            Some(QueueClientSendMessageOptions {
                visibility_timeout: Some(604_801),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (400, "OutOfRangeQueryParameterValue".into())
    );
    let e = q
        .send_message(msg(&"x".repeat(65_537)), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (413, "RequestBodyTooLarge".into()));
    q.send_message(msg(&"x".repeat(65_536)), None)
        .await
        .unwrap();
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn clear_removes_everything() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    for i in 0..40 {
        q.send_message(msg(&i.to_string()), None).await.unwrap();
    }
    q.clear(None).await.unwrap();
    assert_eq!(
        q.get_properties(None)
            .await
            .unwrap()
            .approximate_messages_count()
            .unwrap(),
        Some(0)
    );
    assert!(q
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default()
        .is_empty());
    q.send_message(msg("after"), None).await.unwrap();
    assert_eq!(
        q.get_properties(None)
            .await
            .unwrap()
            .approximate_messages_count()
            .unwrap(),
        Some(1)
    );
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn access_policy_round_trip() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    let start = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let acl = SignedIdentifiers {
        items: Some(vec![SignedIdentifier {
            id: Some("p1".into()),
            access_policy: Some(AccessPolicy {
                start: Some(start),
                expiry: Some(start + Duration::hours(1)),
                permission: Some("raup".into()),
            }),
        }]),
    };
    q.set_access_policy(acl.try_into().unwrap(), None)
        .await
        .unwrap();
    let ids = q
        .get_access_policy(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].id.as_deref(), Some("p1"));
    let policy = ids[0].access_policy.clone().unwrap();
    assert_eq!(policy.permission.as_deref(), Some("raup"));
    assert_eq!(policy.start, Some(start));
    q.set_access_policy(SignedIdentifiers { items: None }.try_into().unwrap(), None)
        .await
        .unwrap();
    assert!(q
        .get_access_policy(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default()
        .is_empty());
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn list_queues_pages_with_markers_and_metadata() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let prefix = unique_name("lst");
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("{prefix}-{i}");
        svc.queue_client(&name)
            .unwrap()
            .create(Some(QueueClientCreateOptions {
                metadata: Some(HashMap::from([("n".to_string(), i.to_string())])),
                ..Default::default()
            }))
            .await
            .unwrap();
        names.push(name);
    }
    let mut pager = svc
        .list_queues(Some(QueueServiceClientListQueuesOptions {
            prefix: Some(prefix.clone()),
            maxresults: Some(2),
            include: Some(vec![ListQueuesIncludeType::Metadata]),
            ..Default::default()
        }))
        .unwrap()
        .into_pages();
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(page) = pager.try_next().await.unwrap() {
        let page: ListQueuesResponse = page.into_model().unwrap();
        pages += 1;
        for item in page.queue_items {
            let name = item.name.unwrap();
            let i = names.iter().position(|n| *n == name).unwrap();
            assert_eq!(item.metadata.unwrap().get("n"), Some(&i.to_string()));
            seen.push(name);
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names, "all queues, in name order, once");
    for n in names {
        svc.queue_client(&n).unwrap().delete(None).await.unwrap();
    }
}

#[tokio::test]
async fn service_properties_keep_cors_rules() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let mut props = svc
        .get_properties(None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    props.cors = Some(vec![CorsRule {
        allowed_origins: Some("http://example.com".into()),
        allowed_methods: Some("GET,PUT".into()),
        allowed_headers: Some("x-ms-meta-*".into()),
        exposed_headers: Some("x-ms-request-id".into()),
        max_age_in_seconds: Some(60),
    }]);
    let r = svc
        .set_properties(props.try_into().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Accepted);
    let back = svc
        .get_properties(None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let cors = back.cors.clone().unwrap_or_default();
    assert_eq!(cors.len(), 1);
    assert_eq!(
        cors[0].allowed_origins.as_deref(),
        Some("http://example.com")
    );
    assert_eq!(cors[0].max_age_in_seconds, Some(60));
    assert!(back.logging.is_some() && back.hour_metrics.is_some() && back.minute_metrics.is_some());
    // Reset for other tests sharing an external endpoint.
    let mut reset = back;
    reset.cors = Some(Vec::new());
    svc.set_properties(reset.try_into().unwrap(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn statistics_on_the_secondary_endpoint() {
    let t = Target::from_env();
    let c = t.creds();
    let secondary = c.queue_endpoint.replacen(
        &format!("/{}", c.account),
        &format!("/{}-secondary", c.account),
        1,
    );
    let svc = clients::queue_service(&secondary, &c.account, &c.key);
    let stats = svc
        .get_statistics(None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let geo = stats.geo_replication.unwrap();
    assert!(geo.last_sync_time.is_some());
}

#[tokio::test]
async fn account_sas_permissions_and_expiry() {
    let t = Target::from_env();
    let owner = shared_key_client(&t);
    let q = new_queue(&owner).await;
    let name = q
        .url()
        .path_segments()
        .unwrap()
        .next_back()
        .unwrap()
        .to_string();

    let full = sas_client(&t, "sco", "rwdlacup", "2099-01-01T00:00:00Z");
    let fq = full.queue_client(&name).unwrap();
    fq.send_message(msg("via sas"), None).await.unwrap();
    let got = fq
        .receive_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(got.len(), 1);

    let read_only = sas_client(&t, "sco", "r", "2099-01-01T00:00:00Z");
    let e = read_only
        .queue_client(&name)
        .unwrap()
        .send_message(msg("no"), None)
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (403, "AuthorizationPermissionMismatch".into())
    );
    assert!(read_only
        .queue_client(&name)
        .unwrap()
        .peek_messages(None)
        .await
        .is_ok());

    let wrong_type = sas_client(&t, "s", "rwdlacup", "2099-01-01T00:00:00Z");
    let e = wrong_type
        .queue_client(&name)
        .unwrap()
        .send_message(msg("no"), None)
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (403, "AuthorizationResourceTypeMismatch".into())
    );

    let expired = sas_client(&t, "sco", "rwdlacup", "2001-01-01T00:00:00Z");
    let e = expired
        .queue_client(&name)
        .unwrap()
        .peek_messages(None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "AuthenticationFailed".into()));
    q.delete(None).await.unwrap();
}

#[tokio::test]
async fn bad_key_is_refused() {
    let t = Target::from_env();
    let c = t.creds();
    let svc = clients::queue_service(&c.queue_endpoint, &c.account, "AAAAAAAAAAAAAAAAAAAAAA==");
    let e = svc.get_properties(None).await.unwrap_err();
    assert_eq!(status_code(&e), (403, "AuthenticationFailed".into()));
}

/// Competing consumers: no message is handed to two receivers within its visibility timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_consumers_never_share_a_message() {
    let t = Target::from_env();
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    let total = 150;
    for i in 0..total {
        q.send_message(msg(&format!("job-{i}")), None)
            .await
            .unwrap();
    }
    let name = q
        .url()
        .path_segments()
        .unwrap()
        .next_back()
        .unwrap()
        .to_string();
    let mut workers = Vec::new();
    for _ in 0..6 {
        let qc = svc.queue_client(&name).unwrap();
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..200 {
                let batch = qc
                    .receive_messages(Some(QueueClientReceiveMessagesOptions {
                        number_of_messages: Some(7),
                        visibility_timeout: Some(120),
                        ..Default::default()
                    }))
                    .await
                    .unwrap()
                    .into_model()
                    .unwrap()
                    .items
                    .unwrap_or_default();
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    ids.push(m.message_id.unwrap());
                }
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), total, "every message delivered exactly once");
    assert_eq!(unique.len(), total);
    q.delete(None).await.unwrap();
}

/// TTL and visibility expiry without sleeping, by moving the emulator's clock.
#[tokio::test]
async fn clock_moves_ttl_and_visibility() {
    let t = Target::from_env();
    let Some(emu) = t.emulator() else {
        return; // the admin clock is an emulator feature
    };
    let svc = shared_key_client(&t);
    let q = new_queue(&svc).await;
    q.send_message(
        msg("short"),
        Some(QueueClientSendMessageOptions {
            message_time_to_live: Some(10),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    q.send_message(msg("long"), None).await.unwrap();
    let got = q
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            number_of_messages: Some(32),
            visibility_timeout: Some(30),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(got.len(), 2);
    emu.advance_clock(31);
    let again = q
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            number_of_messages: Some(32),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(
        again.len(),
        1,
        "the 10 s message expired, the other reappeared"
    );
    assert_eq!(again[0].message_text.as_deref(), Some("long"));
    assert_eq!(again[0].dequeue_count, Some(2));
    assert_eq!(
        q.get_properties(None)
            .await
            .unwrap()
            .approximate_messages_count()
            .unwrap(),
        Some(1)
    );
}
