//! Service properties (logging, metrics, CORS, and the Blob service's extra sections):
//! stored with serde, parsed from and rendered to Azure's XML.

use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::xml::{Element, Writer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub enabled: bool,
    pub days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    pub version: String,
    pub delete: bool,
    pub read: bool,
    pub write: bool,
    pub retention: RetentionPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub version: String,
    pub enabled: bool,
    pub include_apis: Option<bool>,
    pub retention: RetentionPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub allowed_origins: String,
    pub allowed_methods: String,
    pub allowed_headers: String,
    pub exposed_headers: String,
    pub max_age: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProperties {
    pub logging: Logging,
    pub hour_metrics: Metrics,
    pub minute_metrics: Metrics,
    pub cors: Vec<CorsRule>,
    /// Blob service only.
    pub default_service_version: Option<String>,
    pub delete_retention: RetentionPolicy,
    pub static_website: StaticWebsite,
    /// `DeleteRetentionPolicy/AllowPermanentDelete` (stored beside the rest: see
    /// `store::ServiceRecord`).
    #[serde(skip)]
    pub allow_permanent_delete: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticWebsite {
    pub enabled: bool,
    pub index_document: Option<String>,
    pub error_document_404_path: Option<String>,
    pub default_index_document_path: Option<String>,
}

impl Default for ServiceProperties {
    fn default() -> Self {
        let retention = RetentionPolicy {
            enabled: false,
            days: None,
        };
        let metrics = Metrics {
            version: "1.0".into(),
            enabled: false,
            include_apis: None,
            retention: retention.clone(),
        };
        ServiceProperties {
            logging: Logging {
                version: "1.0".into(),
                delete: false,
                read: false,
                write: false,
                retention,
            },
            hour_metrics: metrics.clone(),
            minute_metrics: metrics,
            cors: Vec::new(),
            default_service_version: None,
            delete_retention: RetentionPolicy {
                enabled: false,
                days: None,
            },
            static_website: StaticWebsite::default(),
            allow_permanent_delete: false,
        }
    }
}

pub const MAX_CORS_RULES: usize = 5;
const CORS_METHODS: [&str; 8] = [
    "DELETE", "GET", "HEAD", "MERGE", "POST", "OPTIONS", "PUT", "PATCH",
];

fn invalid_node(name: &str, value: &str) -> StorageError {
    StorageError::new(ErrorCode::InvalidXmlNodeValue)
        .with_detail("XmlNodeName", name)
        .with_detail("XmlNodeValue", value)
}

fn req_bool(el: &Element, name: &str) -> Result<bool> {
    match el.child_text(name).map(str::trim) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(invalid_node(name, other)),
        None => {
            Err(StorageError::new(ErrorCode::MissingRequiredXmlNode)
                .with_detail("XmlNodeName", name))
        }
    }
}

fn parse_retention(el: &Element) -> Result<RetentionPolicy> {
    let rp = el.child("RetentionPolicy").ok_or_else(|| {
        StorageError::new(ErrorCode::MissingRequiredXmlNode)
            .with_detail("XmlNodeName", "RetentionPolicy")
    })?;
    let enabled = req_bool(rp, "Enabled")?;
    let days = match rp.child_text("Days").map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(
            d.parse::<u32>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| invalid_node("Days", d))?,
        ),
    };
    if enabled && days.is_none() {
        return Err(
            StorageError::new(ErrorCode::MissingRequiredXmlNode).with_detail("XmlNodeName", "Days")
        );
    }
    Ok(RetentionPolicy {
        enabled,
        days: if enabled { days } else { None },
    })
}

fn parse_metrics(el: &Element) -> Result<Metrics> {
    let enabled = req_bool(el, "Enabled")?;
    let include_apis = match el.child_text("IncludeAPIs") {
        None => None,
        Some(_) => Some(req_bool(el, "IncludeAPIs")?),
    };
    Ok(Metrics {
        version: el.child_text("Version").unwrap_or("1.0").trim().to_string(),
        enabled,
        include_apis: if enabled { include_apis } else { None },
        retention: parse_retention(el)?,
    })
}

impl ServiceProperties {
    /// Applies a Set Service Properties body: each section present replaces the stored one,
    /// sections left out keep their value.
    pub fn apply_xml(&mut self, body: &[u8]) -> Result<()> {
        let root = crate::protocol::xml::parse(body)?;
        if root.name != "StorageServiceProperties" {
            return Err(StorageError::xml(
                "The root element must be StorageServiceProperties.",
            ));
        }
        let mut next = self.clone();
        if let Some(l) = root.child("Logging") {
            next.logging = Logging {
                version: l.child_text("Version").unwrap_or("1.0").trim().to_string(),
                delete: req_bool(l, "Delete")?,
                read: req_bool(l, "Read")?,
                write: req_bool(l, "Write")?,
                retention: parse_retention(l)?,
            };
        }
        if let Some(m) = root.child("HourMetrics").or_else(|| root.child("Metrics")) {
            next.hour_metrics = parse_metrics(m)?;
        }
        if let Some(m) = root.child("MinuteMetrics") {
            next.minute_metrics = parse_metrics(m)?;
        }
        if let Some(c) = root.child("Cors") {
            let mut rules = Vec::new();
            for r in c.children_named("CorsRule") {
                let text = |n: &str| r.child_text(n).unwrap_or("").trim().to_string();
                let methods = text("AllowedMethods");
                for m in methods.split(',').map(str::trim) {
                    if !CORS_METHODS.contains(&m) {
                        return Err(invalid_node("AllowedMethods", &methods));
                    }
                }
                let max_age_text = text("MaxAgeInSeconds");
                let max_age = max_age_text
                    .parse::<u32>()
                    .map_err(|_| invalid_node("MaxAgeInSeconds", &max_age_text))?;
                let origins = text("AllowedOrigins");
                if origins.is_empty() {
                    return Err(StorageError::new(ErrorCode::MissingRequiredXmlNode)
                        .with_detail("XmlNodeName", "AllowedOrigins"));
                }
                rules.push(CorsRule {
                    allowed_origins: origins,
                    allowed_methods: methods,
                    allowed_headers: text("AllowedHeaders"),
                    exposed_headers: text("ExposedHeaders"),
                    max_age,
                });
            }
            if rules.len() > MAX_CORS_RULES {
                return Err(StorageError::new(ErrorCode::InvalidXmlDocument)
                    .with_detail("Reason", "At most 5 CORS rules are allowed."));
            }
            next.cors = rules;
        }
        if let Some(v) = root.child_text("DefaultServiceVersion") {
            let v = v.trim();
            if !crate::protocol::version::is_valid(v) {
                return Err(invalid_node("DefaultServiceVersion", v));
            }
            next.default_service_version = Some(v.to_string());
        }
        if let Some(d) = root.child("DeleteRetentionPolicy") {
            let enabled = req_bool(d, "Enabled")?;
            let days = match d.child_text("Days").map(str::trim) {
                None | Some("") => None,
                Some(t) => Some(
                    t.parse::<u32>()
                        .ok()
                        .filter(|d| (1..=365).contains(d))
                        .ok_or_else(|| invalid_node("Days", t))?,
                ),
            };
            if enabled && days.is_none() {
                return Err(StorageError::new(ErrorCode::MissingRequiredXmlNode)
                    .with_detail("XmlNodeName", "Days"));
            }
            next.delete_retention = RetentionPolicy {
                enabled,
                days: if enabled { days } else { None },
            };
            next.allow_permanent_delete = enabled
                && match d.child_text("AllowPermanentDelete").map(str::trim) {
                    None | Some("") => false,
                    Some(t) => t
                        .parse::<bool>()
                        .map_err(|_| invalid_node("AllowPermanentDelete", t))?,
                };
        }
        if let Some(sw) = root.child("StaticWebsite") {
            let text = |n: &str| {
                sw.child_text(n)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
            };
            next.static_website = StaticWebsite {
                enabled: req_bool(sw, "Enabled")?,
                index_document: text("IndexDocument"),
                error_document_404_path: text("ErrorDocument404Path"),
                default_index_document_path: text("DefaultIndexDocumentPath"),
            };
        }
        *self = next;
        Ok(())
    }

    /// The XML of Get Service Properties; `blob` adds the Blob service's own sections.
    pub fn to_xml(&self, blob: bool) -> String {
        let mut w = Writer::new();
        w.open("StorageServiceProperties");
        let b = |v: bool| if v { "true" } else { "false" };
        let retention = |w: &mut Writer, r: &RetentionPolicy| {
            w.open("RetentionPolicy").elem("Enabled", b(r.enabled));
            if let Some(d) = r.days {
                w.elem("Days", &d.to_string());
            }
            w.close("RetentionPolicy");
        };
        let l = &self.logging;
        w.open("Logging")
            .elem("Version", &l.version)
            .elem("Read", b(l.read))
            .elem("Write", b(l.write))
            .elem("Delete", b(l.delete));
        retention(&mut w, &l.retention);
        w.close("Logging");
        for (name, m) in [
            ("HourMetrics", &self.hour_metrics),
            ("MinuteMetrics", &self.minute_metrics),
        ] {
            w.open(name)
                .elem("Version", &m.version)
                .elem("Enabled", b(m.enabled));
            if let Some(i) = m.include_apis {
                w.elem("IncludeAPIs", b(i));
            }
            retention(&mut w, &m.retention);
            w.close(name);
        }
        if self.cors.is_empty() {
            w.empty("Cors");
        } else {
            w.open("Cors");
            for r in &self.cors {
                w.open("CorsRule")
                    .elem("AllowedOrigins", &r.allowed_origins)
                    .elem("AllowedMethods", &r.allowed_methods)
                    .elem("MaxAgeInSeconds", &r.max_age.to_string())
                    .elem("ExposedHeaders", &r.exposed_headers)
                    .elem("AllowedHeaders", &r.allowed_headers)
                    .close("CorsRule");
            }
            w.close("Cors");
        }
        if blob {
            w.opt(
                "DefaultServiceVersion",
                self.default_service_version.as_deref(),
            );
            w.open("DeleteRetentionPolicy")
                .elem("Enabled", b(self.delete_retention.enabled));
            if let Some(d) = self.delete_retention.days {
                w.elem("Days", &d.to_string());
            }
            if self.delete_retention.enabled {
                w.elem("AllowPermanentDelete", b(self.allow_permanent_delete));
            }
            w.close("DeleteRetentionPolicy");
            let sw = &self.static_website;
            w.open("StaticWebsite").elem("Enabled", b(sw.enabled));
            w.opt("IndexDocument", sw.index_document.as_deref());
            w.opt(
                "ErrorDocument404Path",
                sw.error_document_404_path.as_deref(),
            );
            w.opt(
                "DefaultIndexDocumentPath",
                sw.default_index_document_path.as_deref(),
            );
            w.close("StaticWebsite");
        }
        w.close("StorageServiceProperties").finish()
    }
}
