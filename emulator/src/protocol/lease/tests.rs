//! The lease state machine: every action from every state, expiry and breaks by the clock.

use super::*;

fn code(r: Result<(Lease, Outcome)>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

#[test]
fn state_machine() {
    let l = Lease::Available;
    let (l, o) = l
        .apply(
            Action::Acquire {
                duration_s: 15,
                proposed: Some("a".into()),
            },
            0,
        )
        .expect("acquire");
    assert_eq!(
        (o.status, o.id.as_deref()),
        (StatusCode::CREATED, Some("a"))
    );
    assert_eq!(l.state(14_999), State::Leased);
    assert_eq!(l.state(15_000), State::Expired);
    assert_eq!(
        code(l.apply(
            Action::Acquire {
                duration_s: 15,
                proposed: Some("b".into())
            },
            1
        )),
        Some(ErrorCode::LeaseAlreadyPresent)
    );
    assert!(
        l.apply(
            Action::Acquire {
                duration_s: 30,
                proposed: Some("a".into())
            },
            1
        )
        .is_ok(),
        "same id re-acquires"
    );
    assert!(
        l.apply(
            Action::Acquire {
                duration_s: 15,
                proposed: Some("b".into())
            },
            20_000
        )
        .is_ok(),
        "expired lease can be taken"
    );
    assert!(
        l.apply(Action::Renew { id: "a".into() }, 20_000).is_ok(),
        "renew after expiry"
    );
    assert_eq!(
        code(l.apply(Action::Renew { id: "x".into() }, 1)),
        Some(ErrorCode::LeaseIdMismatchWithLeaseOperation)
    );
    let (l2, o) = l
        .apply(
            Action::Change {
                id: "a".into(),
                proposed: "c".into(),
            },
            1,
        )
        .expect("change");
    assert_eq!(o.id.as_deref(), Some("c"));
    assert!(
        l2.apply(
            Action::Change {
                id: "a".into(),
                proposed: "c".into()
            },
            1
        )
        .is_ok(),
        "change is idempotent"
    );
    let (b, o) = l2
        .apply(Action::Break { period_s: Some(5) }, 1_000)
        .expect("break");
    assert_eq!((o.status, o.time_s), (StatusCode::ACCEPTED, Some(5)));
    assert_eq!(b.state(2_000), State::Breaking);
    assert_eq!(b.state(6_000), State::Broken);
    assert_eq!(
        code(b.apply(
            Action::Acquire {
                duration_s: 15,
                proposed: Some("c".into())
            },
            2_000
        )),
        Some(ErrorCode::LeaseIsBreakingAndCannotBeAcquired)
    );
    assert_eq!(
        code(b.apply(
            Action::Change {
                id: "c".into(),
                proposed: "d".into()
            },
            2_000
        )),
        Some(ErrorCode::LeaseIsBreakingAndCannotBeChanged)
    );
    assert_eq!(
        code(b.apply(Action::Renew { id: "c".into() }, 7_000)),
        Some(ErrorCode::LeaseIsBrokenAndCannotBeRenewed)
    );
    assert!(
        b.apply(
            Action::Acquire {
                duration_s: -1,
                proposed: None
            },
            7_000
        )
        .is_ok(),
        "broken lease can be acquired"
    );
    let (r, _) = l2
        .apply(Action::Release { id: "c".into() }, 1)
        .expect("release");
    assert_eq!(r, Lease::Available);
    assert_eq!(
        code(r.apply(Action::Break { period_s: None }, 1)),
        Some(ErrorCode::LeaseNotPresentWithLeaseOperation)
    );
    assert_eq!(
        code(r.apply(Action::Release { id: "c".into() }, 1)),
        Some(ErrorCode::LeaseNotPresentWithLeaseOperation)
    );
    // An infinite lease breaks at once without a period.
    let (inf, _) = Lease::Available
        .apply(
            Action::Acquire {
                duration_s: -1,
                proposed: Some("i".into()),
            },
            0,
        )
        .expect("acquire");
    let (broken, o) = inf
        .apply(Action::Break { period_s: None }, 10)
        .expect("break");
    assert_eq!((broken.state(10), o.time_s), (State::Broken, Some(0)));
}

#[test]
fn data_operations() {
    let (l, _) = Lease::Available
        .apply(
            Action::Acquire {
                duration_s: -1,
                proposed: Some("a".into()),
            },
            0,
        )
        .expect("acquire");
    let c = |given: Option<&str>, required| {
        l.check(given, 1, Target::Blob, required)
            .err()
            .map(|e| (e.code, e.status.as_u16()))
    };
    assert_eq!(c(None, true), Some((ErrorCode::LeaseIdMissing, 412)));
    assert_eq!(
        c(Some("b"), true),
        Some((ErrorCode::LeaseIdMismatchWithBlobOperation, 412))
    );
    assert_eq!(c(Some("a"), true), None);
    assert_eq!(c(None, false), None, "reads need no lease id");
    assert_eq!(
        Lease::Available
            .check(Some("a"), 1, Target::Container, true)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::LeaseNotPresentWithContainerOperation)
    );
}
