//! Breaking-change check for the public proto (`atlas.gateway.v1`), in the spirit of
//! `buf breaking` (WIRE_JSON rules), without any tool outside cargo.
//!
//! The baseline `proto/compat/gateway.v1.baseline.binpb` is a `FileDescriptorSet` with
//! the one file `atlas/gateway/v1/gateway.proto` as released (source info stripped, so
//! comment edits do not matter). The current descriptor is the one compiled into the
//! crate (`pb::FILE_DESCRIPTOR_SET`). Against the baseline, the current proto must keep:
//! the file and its package; every message, field (number, name, JSON name, type,
//! label, oneof), enum and enum value (number and name), service and RPC (request and
//! response types, streaming). Additions are fine.
//!
//! To change the contract on purpose (a new major version, or a field deliberately
//! removed while still in development), regenerate the baseline and commit it with the
//! proto change, saying why in the commit message:
//!
//! ```sh
//! UPDATE_PROTO_BASELINE=1 cargo test --test proto_compat
//! ```
use std::collections::BTreeMap;

use prost::Message;
use prost_types::{
    field_descriptor_proto::{Label, Type},
    DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

const FILE: &str = "atlas/gateway/v1/gateway.proto";
const PACKAGE: &str = "atlas.gateway.v1";
const BASELINE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proto/compat/gateway.v1.baseline.binpb"
);

/// The gateway's own file, as compiled into the crate, without source info.
fn current() -> FileDescriptorProto {
    let set = FileDescriptorSet::decode(atlas_grpc_gateway::pb::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    let mut file = set
        .file
        .into_iter()
        .find(|f| f.name() == FILE)
        .unwrap_or_else(|| panic!("{FILE} is not in pb::FILE_DESCRIPTOR_SET"));
    file.source_code_info = None;
    file
}

fn baseline() -> FileDescriptorProto {
    let bytes = std::fs::read(BASELINE).unwrap_or_else(|e| {
        panic!("{BASELINE}: {e}; create it with UPDATE_PROTO_BASELINE=1 cargo test --test proto_compat")
    });
    let set = FileDescriptorSet::decode(bytes.as_slice()).expect("baseline decodes");
    set.file
        .into_iter()
        .find(|f| f.name() == FILE)
        .expect("baseline holds the gateway file")
}

/// Every message, nested ones included, by full name.
fn messages(file: &FileDescriptorProto) -> BTreeMap<String, &DescriptorProto> {
    fn walk<'a>(
        prefix: &str,
        ms: &'a [DescriptorProto],
        out: &mut BTreeMap<String, &'a DescriptorProto>,
    ) {
        for m in ms {
            let name = format!("{prefix}.{}", m.name());
            walk(&name, &m.nested_type, out);
            out.insert(name, m);
        }
    }
    let mut out = BTreeMap::new();
    walk(file.package(), &file.message_type, &mut out);
    out
}

/// Every enum, nested ones included, by full name.
fn enums(file: &FileDescriptorProto) -> BTreeMap<String, &EnumDescriptorProto> {
    let mut out: BTreeMap<String, &EnumDescriptorProto> = file
        .enum_type
        .iter()
        .map(|e| (format!("{}.{}", file.package(), e.name()), e))
        .collect();
    for (name, m) in messages(file) {
        for e in &m.enum_type {
            out.insert(format!("{name}.{}", e.name()), e);
        }
    }
    out
}

fn services(file: &FileDescriptorProto) -> BTreeMap<String, &ServiceDescriptorProto> {
    file.service
        .iter()
        .map(|s| (format!("{}.{}", file.package(), s.name()), s))
        .collect()
}

/// Every breaking difference from `old` to `new`, as readable lines.
fn breaking_changes(old: &FileDescriptorProto, new: &FileDescriptorProto) -> Vec<String> {
    let mut out = Vec::new();
    if old.package() != new.package() {
        out.push(format!(
            "package changed from {} to {}",
            old.package(),
            new.package()
        ));
    }
    if old.syntax() != new.syntax() {
        out.push(format!(
            "syntax changed from {:?} to {:?}",
            old.syntax(),
            new.syntax()
        ));
    }
    let new_messages = messages(new);
    for (name, om) in messages(old) {
        let Some(nm) = new_messages.get(&name) else {
            out.push(format!("message {name} was removed"));
            continue;
        };
        let oneof_name = |m: &DescriptorProto, i: Option<i32>| {
            i.map(|i| m.oneof_decl[i as usize].name().to_string())
        };
        for of in &om.field {
            let Some(nf) = nm.field.iter().find(|f| f.number() == of.number()) else {
                let moved = nm.field.iter().find(|f| f.name() == of.name());
                out.push(match moved {
                    Some(f) => format!(
                        "field {name}.{} was renumbered from {} to {}",
                        of.name(),
                        of.number(),
                        f.number()
                    ),
                    None => format!("field {name}.{} = {} was removed", of.name(), of.number()),
                });
                continue;
            };
            let what = format!("field {name}.{} = {}", of.name(), of.number());
            if nf.name() != of.name() {
                out.push(format!("{what} was renamed to {}", nf.name()));
            }
            if nf.json_name() != of.json_name() {
                out.push(format!(
                    "{what} changed JSON name from {} to {}",
                    of.json_name(),
                    nf.json_name()
                ));
            }
            if nf.r#type() != of.r#type() || nf.type_name() != of.type_name() {
                out.push(format!(
                    "{what} changed type from {:?} {} to {:?} {}",
                    of.r#type(),
                    of.type_name(),
                    nf.r#type(),
                    nf.type_name()
                ));
            }
            if nf.label() != of.label() {
                out.push(format!(
                    "{what} changed label from {:?} to {:?}",
                    of.label(),
                    nf.label()
                ));
            }
            if nf.proto3_optional() != of.proto3_optional() {
                out.push(format!("{what} changed presence (proto3 optional)"));
            }
            if oneof_name(om, of.oneof_index) != oneof_name(nm, nf.oneof_index) {
                out.push(format!("{what} moved into or out of a oneof"));
            }
        }
    }
    let new_enums = enums(new);
    for (name, oe) in enums(old) {
        let Some(ne) = new_enums.get(&name) else {
            out.push(format!("enum {name} was removed"));
            continue;
        };
        for ov in &oe.value {
            match ne.value.iter().find(|v| v.number() == ov.number()) {
                None => {
                    let moved = ne.value.iter().find(|v| v.name() == ov.name());
                    out.push(match moved {
                        Some(v) => format!(
                            "enum value {name}.{} was renumbered from {} to {}",
                            ov.name(),
                            ov.number(),
                            v.number()
                        ),
                        None => format!(
                            "enum value {name}.{} = {} was removed",
                            ov.name(),
                            ov.number()
                        ),
                    });
                }
                // An alias (allow_alias) may add a name; the old name must remain.
                Some(_)
                    if !ne
                        .value
                        .iter()
                        .any(|v| v.number() == ov.number() && v.name() == ov.name()) =>
                {
                    out.push(format!(
                        "enum value {name}.{} = {} was renamed",
                        ov.name(),
                        ov.number()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let new_services = services(new);
    for (name, os) in services(old) {
        let Some(ns) = new_services.get(&name) else {
            out.push(format!("service {name} was removed"));
            continue;
        };
        for om in &os.method {
            let Some(nm) = ns.method.iter().find(|m| m.name() == om.name()) else {
                out.push(format!("rpc {name}.{} was removed", om.name()));
                continue;
            };
            if nm.input_type() != om.input_type() || nm.output_type() != om.output_type() {
                out.push(format!(
                    "rpc {name}.{} changed from ({}) returns ({}) to ({}) returns ({})",
                    om.name(),
                    om.input_type(),
                    om.output_type(),
                    nm.input_type(),
                    nm.output_type()
                ));
            }
            if nm.client_streaming() != om.client_streaming()
                || nm.server_streaming() != om.server_streaming()
            {
                out.push(format!("rpc {name}.{} changed streaming", om.name()));
            }
        }
    }
    out
}

#[test]
fn proto_has_no_breaking_change_against_the_baseline() {
    let now = current();
    if std::env::var_os("UPDATE_PROTO_BASELINE").is_some() {
        let set = FileDescriptorSet {
            file: vec![now.clone()],
        };
        std::fs::create_dir_all(std::path::Path::new(BASELINE).parent().unwrap()).unwrap();
        std::fs::write(BASELINE, set.encode_to_vec()).unwrap();
        eprintln!("wrote {BASELINE}");
    }
    let base = baseline();
    assert_eq!(now.package(), PACKAGE);
    let changes = breaking_changes(&base, &now);
    assert!(
        changes.is_empty(),
        "breaking changes to {FILE} against {BASELINE}:\n  {}\n\
         If this is intended, run UPDATE_PROTO_BASELINE=1 cargo test --test proto_compat \
         and commit the new baseline with the proto change.",
        changes.join("\n  ")
    );
}

/// The checker itself: each kind of break in a copy of the baseline is reported, and
/// additions are not.
#[test]
fn checker_reports_each_kind_of_break() {
    let base = current();
    let msg = |f: &mut FileDescriptorProto, name: &str| -> usize {
        f.message_type
            .iter()
            .position(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let expect = |f: FileDescriptorProto, needle: &str| {
        let changes = breaking_changes(&base, &f);
        assert!(
            changes.iter().any(|c| c.contains(needle)),
            "{needle:?} not in {changes:?}"
        );
    };

    // Additions: a new field, a new enum value, a new message and a new rpc are fine.
    let mut f = base.clone();
    let i = msg(&mut f, "CreateLinkTokenRequest");
    let mut extra = f.message_type[i].field[0].clone();
    extra.name = Some("note".into());
    extra.json_name = Some("note".into());
    extra.number = Some(99);
    f.message_type[i].field.push(extra);
    let mut v = f.enum_type[0].value[1].clone();
    v.name = Some("ORG_NEW_ROLE".into());
    v.number = Some(42);
    f.enum_type[0].value.push(v);
    let mut m = f.message_type[i].clone();
    m.name = Some("Extra".into());
    f.message_type.push(m);
    let mut rpc = f.service[0].method[0].clone();
    rpc.name = Some("NewRpc".into());
    f.service[0].method.push(rpc);
    assert_eq!(breaking_changes(&base, &f), Vec::<String>::new());

    let mut f = base.clone();
    let i = msg(&mut f, "CreateLinkTokenRequest");
    f.message_type[i]
        .field
        .retain(|x| x.name() != "access_list_ips");
    expect(f, "CreateLinkTokenRequest.access_list_ips = 2 was removed");

    let mut f = base.clone();
    let i = msg(&mut f, "CreateApiKeyRequest");
    f.message_type[i].field[1].number = Some(20);
    expect(f, "was renumbered from 2 to 20");

    let mut f = base.clone();
    let i = msg(&mut f, "CreateApiKeyRequest");
    let roles = f.message_type[i]
        .field
        .iter_mut()
        .find(|x| x.name() == "roles")
        .unwrap();
    roles.set_type(Type::String);
    roles.type_name = None;
    expect(f, "roles = 3 changed type");

    let mut f = base.clone();
    let i = msg(&mut f, "CreateLinkTokenRequest");
    f.message_type[i].field[1].set_label(Label::Optional);
    expect(f, "changed label");

    let mut f = base.clone();
    let i = msg(&mut f, "DeleteLinkTokenRequest");
    f.message_type[i].field[0].name = Some("organization_id".into());
    expect(f, "was renamed to organization_id");

    let mut f = base.clone();
    f.message_type.retain(|m| m.name() != "Link");
    expect(f, "message atlas.gateway.v1.Link was removed");

    let mut f = base.clone();
    f.service[0]
        .method
        .retain(|m| m.name() != "DeleteLinkToken");
    expect(
        f,
        "rpc atlas.gateway.v1.AtlasGateway.DeleteLinkToken was removed",
    );

    let mut f = base.clone();
    f.service[0].method[0].output_type = Some(".atlas.gateway.v1.ApiKey".into());
    expect(f, "returns (.atlas.gateway.v1.ApiKey)");

    let mut f = base.clone();
    f.service[0].method[0].server_streaming = Some(true);
    expect(f, "changed streaming");

    let mut f = base.clone();
    f.enum_type[0].value.retain(|v| v.name() != "ORG_READ_ONLY");
    expect(f, "OrgRole.ORG_READ_ONLY = 7 was removed");

    let mut f = base.clone();
    f.enum_type[0].value[2].number = Some(12);
    expect(f, "was renumbered from 2 to 12");

    let mut f = base.clone();
    f.package = Some("atlas.gateway.v2".into());
    expect(f, "package changed");
}
