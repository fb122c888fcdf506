//! `docker-compose.yml` and the Dockerfiles run on a real engine in scripts/docker-e2e.sh;
//! this checks, without one and in a second, what can go wrong in them: every service builds a stage that
//! exists, base images are build arguments, the emulator's data is a named volume, app and
//! worker get a connection string that parses and points at the `emulator` service, the
//! worker can be scaled, and the health-check commands work against the real binaries.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{start_app, workspace_bin, Storage};
use std::path::Path;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn compose() -> Yaml {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn dockerfile() -> String {
    std::fs::read_to_string(root().join("Dockerfile")).unwrap()
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn compose_services_match_the_dockerfile() {
    let c = compose();
    let d = dockerfile();
    let services = &c["services"];
    let first_from = d.find("\nFROM ").unwrap();
    for arg in ["ARG RUST_IMAGE=", "ARG RUNTIME_IMAGE="] {
        assert!(
            d[..first_from].contains(arg),
            "{arg} must come before the first FROM"
        );
    }
    assert!(d.contains("FROM ${RUST_IMAGE} AS build"));
    assert!(d.contains("FROM ${RUNTIME_IMAGE} AS runtime"));
    for name in ["emulator", "app", "worker"] {
        let s = &services[name];
        assert!(!s.is_badvalue(), "service {name}");
        let target = s["build"]["target"].as_str().unwrap();
        assert!(
            d.contains(&format!("FROM runtime AS {target}\n")),
            "stage {target}"
        );
        for arg in ["RUST_IMAGE", "RUNTIME_IMAGE"] {
            assert!(
                s["build"]["args"][arg].as_str().unwrap().contains(arg),
                "{name} {arg}"
            );
        }
    }
    // Data on a named volume, where the image's entrypoint keeps it.
    assert_eq!(
        strs(&services["emulator"]["volumes"]),
        vec!["emulator-data:/data"]
    );
    assert!(c["volumes"]
        .as_hash()
        .unwrap()
        .contains_key(&Yaml::from_str("emulator-data")));
    // Azurite's command (not an entrypoint), so Azurite's command lines replace it.
    let prebuilt = std::fs::read_to_string(root().join("docker/Dockerfile.prebuilt")).unwrap();
    for file in [&d, &prebuilt] {
        assert!(file.contains(
            r#"CMD ["azurite", "-l", "/data", "--blobHost", "0.0.0.0", "--queueHost", "0.0.0.0"]"#
        ));
        for stage in ["emulator", "app", "worker"] {
            assert!(file.contains(&format!("AS {stage}\n")), "stage {stage}");
        }
    }
    // Scalable workers: no fixed name, no published ports.
    assert!(services["worker"]["container_name"].is_badvalue());
    assert!(services["worker"]["ports"].is_badvalue());
    assert_eq!(strs(&services["app"]["ports"]), vec!["3000:3000"]);
    assert_eq!(
        services["app"]["depends_on"]["emulator"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn compose_connection_strings_point_at_the_emulator_service() {
    let c = compose();
    for name in ["app", "worker"] {
        let cs = c["services"][name]["environment"]["AZURE_STORAGE_CONNECTION_STRING"]
            .as_str()
            .unwrap();
        let a = storage_client::StorageAccount::parse(cs).unwrap();
        assert_eq!(a.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(a.blob().unwrap(), "http://emulator:10000/devstoreaccount1");
        assert_eq!(a.queue().unwrap(), "http://emulator:10001/devstoreaccount1");
    }
}

#[test]
fn health_check_commands_work_against_the_binaries() {
    let c = compose();
    let storage = Storage::emulator();
    let Storage::Emulator(emu) = &storage else {
        unreachable!()
    };
    let port = emu.blob_base.rsplit(':').next().unwrap().to_string();
    let test = strs(&c["services"]["emulator"]["healthcheck"]["test"]);
    assert_eq!(test[..2], ["CMD".to_string(), "emulator".to_string()]);
    let run = |args: &[String], env: &[(&str, &str)]| {
        let mut args = args.to_vec();
        // The image's ports are the defaults; this emulator's are free ones.
        match args.iter().position(|a| a == "--blobPort") {
            Some(i) => args[i + 1] = port.clone(),
            None => args.extend(["--blobPort".to_string(), port.clone()]),
        }
        let mut cmd = Command::new(workspace_bin(&test[1]));
        cmd.args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.status().unwrap()
    };
    assert!(run(&test[2..], &[]).success(), "emulator is healthy");

    let (app, base) = start_app(&storage.connection_string(), "deploy-app", &[]);
    let listen = base.trim_start_matches("http://").to_string();
    let test = strs(&c["services"]["app"]["healthcheck"]["test"]);
    assert_eq!(test[1], "app");
    let status = Command::new(workspace_bin("app"))
        .args(&test[2..])
        .env("APP_LISTEN", &listen)
        .status()
        .unwrap();
    assert!(status.success(), "app is healthy");
    drop(storage);
    let status = Command::new(workspace_bin("app"))
        .args(&test[2..])
        .env("APP_LISTEN", &listen)
        .status()
        .unwrap();
    assert!(!status.success(), "app reports storage going away");
    drop(app);
}
