//! Metadata equality, access policy and service property XML.

use super::*;
use crate::protocol::error::ErrorCode;

#[test]
fn metadata_equality_ignores_name_case_only() {
    let a = vec![("Color".to_string(), "red".to_string())];
    let b = vec![("color".to_string(), "red".to_string())];
    let c = vec![("color".to_string(), "Red".to_string())];
    assert!(metadata_equal(&a, &b));
    assert!(!metadata_equal(&a, &c));
    assert!(metadata_equal(&vec![], &vec![]));
    assert!(!metadata_equal(&a, &vec![]));
}

#[test]
fn signed_identifiers_round_trip_and_bounds() {
    let body = r#"<?xml version="1.0" encoding="utf-8"?><SignedIdentifiers><SignedIdentifier><Id>p1</Id><AccessPolicy><Start>2025-08-01T00:00:00Z</Start><Expiry>2025-09-01</Expiry><Permission>raup</Permission></AccessPolicy></SignedIdentifier><SignedIdentifier><Id>p2</Id></SignedIdentifier></SignedIdentifiers>"#;
    let ids = parse_signed_identifiers(body.as_bytes(), "raup").expect("parse");
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ids[0].policy.start.as_deref(),
        Some("2025-08-01T00:00:00.0000000Z")
    );
    assert_eq!(
        ids[0].policy.expiry.as_deref(),
        Some("2025-09-01T00:00:00.0000000Z")
    );
    let again = parse_signed_identifiers(write_signed_identifiers(&ids).as_bytes(), "raup")
        .expect("reparse");
    assert_eq!(again, ids);
    assert_eq!(
        write_signed_identifiers(&[]),
        format!("{}<SignedIdentifiers />", crate::protocol::xml::DECL)
    );
    assert!(parse_signed_identifiers(b"", "raup")
        .expect("empty")
        .is_empty());

    let six: String = (0..6)
        .map(|i| format!("<SignedIdentifier><Id>p{i}</Id></SignedIdentifier>"))
        .collect();
    let err = parse_signed_identifiers(
        format!("<SignedIdentifiers>{six}</SignedIdentifiers>").as_bytes(),
        "raup",
    )
    .expect_err("six");
    assert_eq!(err.code, ErrorCode::InvalidXmlDocument);
    let long_id = "x".repeat(65);
    assert!(parse_signed_identifiers(format!("<SignedIdentifiers><SignedIdentifier><Id>{long_id}</Id></SignedIdentifier></SignedIdentifiers>").as_bytes(), "raup").is_err());
    let bad_perm = "<SignedIdentifiers><SignedIdentifier><Id>a</Id><AccessPolicy><Permission>rwx</Permission></AccessPolicy></SignedIdentifier></SignedIdentifiers>";
    assert_eq!(
        parse_signed_identifiers(bad_perm.as_bytes(), "raup").map_err(|e| e.code),
        Err(ErrorCode::InvalidXmlNodeValue)
    );
}

#[test]
fn service_properties_partial_update_and_round_trip() {
    let mut p = ServiceProperties::default();
    let cors = r#"<StorageServiceProperties><Cors><CorsRule><AllowedOrigins>http://a.com</AllowedOrigins><AllowedMethods>GET,PUT</AllowedMethods><MaxAgeInSeconds>500</MaxAgeInSeconds><ExposedHeaders>x-ms-meta-*</ExposedHeaders><AllowedHeaders>x-ms-meta-abc</AllowedHeaders></CorsRule></Cors></StorageServiceProperties>"#;
    p.apply_xml(cors.as_bytes()).expect("cors");
    assert_eq!(p.cors.len(), 1);
    let logging = "<StorageServiceProperties><Logging><Version>1.0</Version><Delete>true</Delete><Read>false</Read><Write>true</Write><RetentionPolicy><Enabled>true</Enabled><Days>7</Days></RetentionPolicy></Logging></StorageServiceProperties>";
    p.apply_xml(logging.as_bytes()).expect("logging");
    assert_eq!(p.cors.len(), 1, "CORS kept when the section is left out");
    assert!(p.logging.delete && p.logging.write && !p.logging.read);
    let blob_only = "<StorageServiceProperties><DefaultServiceVersion>2021-10-04</DefaultServiceVersion><DeleteRetentionPolicy><Enabled>true</Enabled><Days>5</Days></DeleteRetentionPolicy><StaticWebsite><Enabled>true</Enabled><IndexDocument>index.html</IndexDocument><ErrorDocument404Path>404.html</ErrorDocument404Path></StaticWebsite></StorageServiceProperties>";
    p.apply_xml(blob_only.as_bytes()).expect("blob sections");
    assert_eq!(
        p.static_website.index_document.as_deref(),
        Some("index.html")
    );
    assert_eq!(p.delete_retention.days, Some(5));
    assert!(
        !p.to_xml(false).contains("StaticWebsite"),
        "the queue service has no blob sections"
    );
    assert!(p
        .clone()
        .apply_xml(blob_only.replace("2021-10-04", "yesterday").as_bytes())
        .is_err());
    let mut q = ServiceProperties::default();
    q.apply_xml(p.to_xml(true).as_bytes()).expect("round trip");
    assert_eq!(q, p);

    let bad_method = cors.replace("GET,PUT", "GET,FETCH");
    assert_eq!(
        p.clone()
            .apply_xml(bad_method.as_bytes())
            .map_err(|e| e.code),
        Err(ErrorCode::InvalidXmlNodeValue)
    );
    let bad_days = logging.replace("<Days>7</Days>", "<Days>366</Days>");
    assert_eq!(
        p.clone().apply_xml(bad_days.as_bytes()).map_err(|e| e.code),
        Err(ErrorCode::InvalidXmlNodeValue)
    );
    let rule = r#"<CorsRule><AllowedOrigins>*</AllowedOrigins><AllowedMethods>GET</AllowedMethods><MaxAgeInSeconds>1</MaxAgeInSeconds></CorsRule>"#;
    let six = format!(
        "<StorageServiceProperties><Cors>{}</Cors></StorageServiceProperties>",
        rule.repeat(6)
    );
    assert_eq!(
        p.clone().apply_xml(six.as_bytes()).map_err(|e| e.code),
        Err(ErrorCode::InvalidXmlDocument)
    );
    assert!(p.clone().apply_xml(b"<Other/>").is_err());
}
