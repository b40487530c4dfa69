"""Every role assignment in infra/: which role, to whom, on which scope; custom roles carry only the needed actions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import tree_sitter

from tests.infra.bicep_model import (
    BicepFile,
    Declaration,
    bicep_file,
    bicep_files,
    literal,
    object_properties,
)

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
SUBSCRIPTION_SCOPE = "subscription"

# Built-in role definition ids, checked against Microsoft's built-in roles reference.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
EVENT_HUBS_DATA_RECEIVER = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde"
EVENT_HUBS_DATA_SENDER = "2b629674-e913-4c01-ae53-ef4638d8f975"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
DEPLOYMENT_READER = "custom:deploymentReaderRoleId"
SCANNER_OPERATOR = "custom:scannerOperatorRoleId"
IDENTITY_ASSIGNER = "custom:identityAssignerRoleId"
MONITORED_DEPLOYMENT_READER = "custom:deploymentReader"
MONITORED_SUBSCRIPTION = "app/monitored-subscription.bicep"

APP_PRINCIPAL = "appPrincipalId"
ROLES_APP = "app/roles-app.bicep"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
EVENT_HUB = "Microsoft.EventHub/namespaces/eventhubs"
SCANNER_RESOURCE_GROUP = "resourceGroup:scannerResourceGroup"


@dataclass(frozen=True)
class Grant:
    """One role assignment: where it is declared, the role, the principal expression and the resolved scope."""

    file: str
    role: str
    principal: str
    scope: str


EXPECTED_GRANTS = {
    Grant(ROLES_APP, STORAGE_BLOB_DATA_OWNER, APP_PRINCIPAL, STORAGE_ACCOUNT),
    Grant(ROLES_APP, STORAGE_QUEUE_DATA_CONTRIBUTOR, APP_PRINCIPAL, STORAGE_ACCOUNT),
    Grant(ROLES_APP, STORAGE_TABLE_DATA_CONTRIBUTOR, APP_PRINCIPAL, STORAGE_ACCOUNT),
    Grant(ROLES_APP, EVENT_HUBS_DATA_RECEIVER, APP_PRINCIPAL, EVENT_HUB),
    Grant(ROLES_APP, KEY_VAULT_SECRETS_USER, APP_PRINCIPAL, "Microsoft.KeyVault/vaults"),
    Grant(ROLES_APP, MONITORING_METRICS_PUBLISHER, APP_PRINCIPAL, "Microsoft.Insights/components"),
    Grant(ROLES_APP, IDENTITY_ASSIGNER, APP_PRINCIPAL, "Microsoft.ManagedIdentity/userAssignedIdentities"),
    Grant("app/roles-scanner-rg.bicep", SCANNER_OPERATOR, APP_PRINCIPAL, SCANNER_RESOURCE_GROUP),
    Grant("app/roles-subscription.bicep", DEPLOYMENT_READER, APP_PRINCIPAL, SUBSCRIPTION_SCOPE),
    Grant("app/eventgrid.bicep", EVENT_HUBS_DATA_SENDER, "systemTopic.identity.principalId", EVENT_HUB),
    Grant("app/roles-acr.bicep", ACR_PULL, "scannerPrincipalId", "Microsoft.ContainerRegistry/registries"),
    Grant("app/roles-acr.bicep", ACR_PULL, APP_PRINCIPAL, "Microsoft.ContainerRegistry/registries"),
    Grant(MONITORED_SUBSCRIPTION, MONITORED_DEPLOYMENT_READER, APP_PRINCIPAL, SUBSCRIPTION_SCOPE),
    Grant("app/roles-hub-sender.bicep", EVENT_HUBS_DATA_SENDER, "senderPrincipalId", EVENT_HUB),
}

EXPECTED_CUSTOM_ROLES = {
    "deploymentReader": (
        {
            "Microsoft.ContainerInstance/containerGroups/read",
            "Microsoft.App/containerApps/read",
            "Microsoft.App/jobs/read",
            "Microsoft.ResourceGraph/resources/read",  # the inventory sweep's queries
        },
        "subscription().id",
    ),
    "scannerOperator": (
        {
            "Microsoft.ContainerInstance/containerGroups/read",
            "Microsoft.ContainerInstance/containerGroups/write",
            "Microsoft.ContainerInstance/containerGroups/delete",
            "Microsoft.ContainerInstance/containerGroups/containers/logs/read",
        },
        "scannerResourceGroupId",
    ),
    "identityAssigner": (
        {
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        },
        "appResourceGroupId",
    ),
}


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode()


def _role_of(declaration: Declaration) -> str:
    """The built-in role GUID, `custom:<param>` for a role definition id passed in as a parameter, or
    `custom:<declaration>` for `<declaration>.id` of a role definition in the same file."""
    node = declaration.node("properties", "roleDefinitionId")
    assert node is not None, f"{declaration.name}: no roleDefinitionId"
    file = declaration.file
    if node.type == "member_expression":
        holder, member = node.named_children
        assert _text(member) == "id", f"{declaration.name}: unexpected role id {_text(node)}"
        assert file.declaration(_text(holder)).resource_type == ROLE_DEFINITION
        return f"custom:{_text(holder)}"
    if node.type == "identifier":
        assert _text(node) in file.parameters(), f"{declaration.name}: role id {_text(node)} is not a parameter"
        return f"custom:{_text(node)}"
    assert node.type == "call_expression", f"{declaration.name}: unexpected role id {_text(node)}"
    function, arguments = node.named_children
    assert _text(function) == "subscriptionResourceId", f"{declaration.name}: built-in roles live at subscription"
    resource_type, role = arguments.named_children
    assert literal(resource_type) == ROLE_DEFINITION
    return _resolve_string(file, role)


def _resolve_string(file: BicepFile, node: tree_sitter.Node) -> str:
    variables = file.variables()
    if node.type == "identifier":
        node = variables[_text(node)]
    elif node.type == "member_expression":
        holder, member = node.named_children
        found = dict(object_properties(variables[_text(holder)])).get(_text(member))
        assert found is not None, f"{file.relative}: {_text(node)} is undefined"
        node = found
    value = literal(node)
    assert isinstance(value, str), f"{file.relative}: role id {_text(node)} is not a literal"
    return value


def _scope_of(declaration: Declaration) -> str:
    """The resource type the assignment is scoped to, or where the file's deployment lands."""
    scope = declaration.text("scope")
    file = declaration.file
    if scope is not None:
        return file.declaration(scope).resource_type
    if file.target_scope == SUBSCRIPTION_SCOPE:
        return SUBSCRIPTION_SCOPE
    callers = [m for m in bicep_file("main.bicep").modules() if m.resource_type == file.relative]
    assert len(callers) == 1, f"{file.relative}: expected one caller in main.bicep"
    return f"resourceGroup:{callers[0].text('scope')}"


def _grants() -> list[Grant]:
    grants = []
    for file in bicep_files():
        for assignment in file.resources(ROLE_ASSIGNMENT):
            principal = assignment.text("properties", "principalId") or ""
            grants.append(Grant(file.relative, _role_of(assignment), principal, _scope_of(assignment)))
    return grants


def test_every_role_assignment_is_expected_and_scoped_narrowly():
    grants = _grants()
    assert len(grants) == len(set(grants)), "a role is assigned twice"
    assert set(grants) == EXPECTED_GRANTS


def test_role_assignments_name_a_service_principal_and_a_stable_guid():
    for file in bicep_files():
        for assignment in file.resources(ROLE_ASSIGNMENT):
            assert assignment.value("properties", "principalType") == "ServicePrincipal", assignment.name
            name = assignment.text("name") or ""
            assert name.startswith("guid("), f"{file.relative}:{assignment.name} name must be a deterministic guid()"
            assert assignment.value("properties", "description"), f"{assignment.name}: say why the role is needed"


def test_only_the_custom_read_role_is_granted_at_subscription_scope():
    subscription_grants = [grant for grant in _grants() if grant.scope == SUBSCRIPTION_SCOPE]
    assert sorted(grant.role for grant in subscription_grants) == [MONITORED_DEPLOYMENT_READER, DEPLOYMENT_READER]


@pytest.mark.parametrize(
    ("file", "role_name"),
    [("app/custom-roles.bicep", name) for name in sorted(EXPECTED_CUSTOM_ROLES)]
    + [(MONITORED_SUBSCRIPTION, "deploymentReader")],
)
def test_custom_roles_hold_only_the_needed_actions(file: str, role_name: str):
    actions, assignable_scope = EXPECTED_CUSTOM_ROLES[role_name]
    role = bicep_file(file).declaration(role_name)
    (permission,) = role.value("properties", "permissions")
    assert set(permission["actions"]) == actions
    assert permission["notActions"] == [] and permission["dataActions"] == [] and permission["notDataActions"] == []
    # Compared as text: tree-sitter-bicep splits `subscription().id` when it opens an array (no ERROR node).
    scopes = "".join((role.text("properties", "assignableScopes") or "").split())
    assert scopes == f"[{assignable_scope}]"
    assert role.value("properties", "type") == "CustomRole"


def test_custom_roles_are_wired_to_their_scopes_in_main():
    main = bicep_file("main.bicep")
    custom_roles = main.declaration("customRoles")
    assert custom_roles.text("scope") is None, "role definitions deploy at subscription scope"
    assert custom_roles.text("params", "scannerResourceGroupId") == "scannerResourceGroup.id"
    assert custom_roles.text("params", "appResourceGroupId") == "appResourceGroup.id"
    wiring = {
        "appRoles": ("identityAssignerRoleId", "appResourceGroup"),
        "scannerRoles": ("scannerOperatorRoleId", "scannerResourceGroup"),
        "subscriptionRoles": ("deploymentReaderRoleId", None),
    }
    for module_name, (param, scope) in wiring.items():
        module = main.declaration(module_name)
        assert module.text("params", param) == f"customRoles.outputs.{param}"
        assert module.text("scope") == scope
        principal = module.text("params", APP_PRINCIPAL)
        assert principal == "identities.outputs.appIdentityPrincipalId"


def test_scanner_identity_is_the_one_attached_and_pulling_and_the_app_reads_digests():
    main = bicep_file("main.bicep")
    acr = main.declaration("acrPull")
    assert acr.looped, "one AcrPull module per registry named in scannerAcrResourceIds"
    assert acr.text("params", "scannerPrincipalId") == "identities.outputs.scannerIdentityPrincipalId"
    assert acr.text("params", APP_PRINCIPAL) == "identities.outputs.appIdentityPrincipalId", "digest resolution"
    assert (acr.text("scope") or "").startswith("resourceGroup(split(registryId")
    assignment = bicep_file(ROLES_APP).declaration("assignScannerIdentity")
    assert assignment.text("scope") == "scannerIdentity"
    assert bicep_file(ROLES_APP).declaration("scannerIdentity").existing


def test_scanner_resource_group_is_dedicated_and_filtered_from_events():
    main = bicep_file("main.bicep")
    scanner_group = main.declaration("scannerResourceGroup")
    assert scanner_group.resource_type == "Microsoft.Resources/resourceGroups"
    assert main.declaration("eventGrid").text("params", "scannerResourceGroupId") == "scannerResourceGroup.id"
    assert main.declaration("appResourceGroup").text("name") != scanner_group.text("name")
