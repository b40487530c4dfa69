"""The two event routes into the hub: Event Grid (default, managed identity) and the Activity Log (optional, SAS)."""

from __future__ import annotations

from tests.infra.bicep_model import Expression, bicep_file, bicep_files

EVENT_GRID = "app/eventgrid.bicep"
EVENT_HUB = "app/eventhub.bicep"
WATCHED_OPERATIONS = {
    "Microsoft.ContainerInstance/containerGroups/write",
    "Microsoft.App/containerApps/write",
    "Microsoft.App/jobs/write",
}
OPERATION_NAME_KEY = "data.operationName"


def _filter():
    return bicep_file(EVENT_GRID).declaration("containerWrites").value("properties", "filter")


def test_system_topic_watches_the_subscription_with_its_own_identity():
    topic = bicep_file(EVENT_GRID).declaration("systemTopic")
    assert topic.value("location") == "global"
    assert topic.value("identity", "type") == "SystemAssigned"
    assert topic.value("properties", "topicType") == "Microsoft.Resources.Subscriptions"
    assert topic.value("properties", "source") == Expression("subscription().id")


def test_only_successful_writes_are_delivered():
    assert _filter()["includedEventTypes"] == ["Microsoft.Resources.ResourceWriteSuccess"]


def test_filter_on_operation_name_covers_groups_apps_and_jobs():
    operation_filters = [f for f in _filter()["advancedFilters"] if f["key"] == OPERATION_NAME_KEY]
    assert len(operation_filters) == 1
    (operation_filter,) = operation_filters
    assert operation_filter["operatorType"] in ("StringIn", "StringContains")
    assert set(operation_filter["values"]) == WATCHED_OPERATIONS


def test_scanner_resource_group_writes_are_never_delivered():
    subject_filters = [f for f in _filter()["advancedFilters"] if f["key"] == "subject"]
    assert subject_filters == [
        {
            "operatorType": "StringNotBeginsWith",
            "key": "subject",
            "values": [Expression("'${scannerResourceGroupId}/'")],
        }
    ]


def test_delivery_uses_the_topic_identity_to_the_hub():
    subscription = bicep_file(EVENT_GRID).declaration("containerWrites")
    delivery = subscription.value("properties", "deliveryWithResourceIdentity")
    assert delivery["identity"] == {"type": "SystemAssigned"}
    assert delivery["destination"]["endpointType"] == "EventHub"
    assert delivery["destination"]["properties"]["resourceId"] == Expression("hub.id")
    assert "destination" not in subscription.value("properties"), "no key-based delivery"
    assert subscription.value("dependsOn") == [Expression("topicSendsToHub")], "the role must exist before delivery"


def test_hub_is_entra_only_unless_the_activity_log_route_is_on():
    namespace = bicep_file(EVENT_HUB).declaration("namespace")
    assert namespace.value("properties", "disableLocalAuth") == Expression("!enableActivityLogRule")
    assert namespace.value("properties", "minimumTlsVersion") == "1.2"
    main = bicep_file("main.bicep").declaration("eventHub")
    assert main.text("params", "enableActivityLogRule") == "enableActivityLogRoute"
    assert main.text("params", "sku") == "enableActivityLogRoute ? 'Standard' : eventHubSku"


def test_activity_log_rule_is_send_only_and_conditional():
    event_hub = bicep_file(EVENT_HUB)
    rule = event_hub.declaration("activityLogRule")
    assert rule.conditional
    assert rule.resource_type == "Microsoft.EventHub/namespaces/authorizationRules"
    default_rights = event_hub.parameters()["activityLogRuleRights"].default
    assert default_rights is not None
    assert "".join((default_rights.text or b"").decode().split()) == "['Send']"


def test_activity_log_route_streams_administrative_events_at_subscription_scope():
    activity_log = bicep_file("app/activitylog.bicep")
    assert activity_log.target_scope == "subscription"
    setting = activity_log.declaration("activityLogToHub")
    assert setting.resource_type == "Microsoft.Insights/diagnosticSettings"
    assert setting.value("properties", "logs") == [{"category": "Administrative", "enabled": True}]
    assert setting.value("properties", "eventHubAuthorizationRuleId") == Expression("eventHubAuthorizationRuleId")
    module = bicep_file("main.bicep").declaration("activityLog")
    assert module.conditional
    assert module.text("scope") is None, "a subscription diagnostic setting deploys at subscription scope"


def test_routes_are_parameters_with_event_grid_by_default():
    parameters = bicep_file("main.bicep").parameters()
    assert parameters["enableEventGridRoute"].default is not None
    assert parameters["enableEventGridRoute"].default.text == b"true"
    assert parameters["enableActivityLogRoute"].default is not None
    assert parameters["enableActivityLogRoute"].default.text == b"false"
    assert bicep_file("main.bicep").declaration("eventGrid").conditional


def test_conditional_resources_are_limited_to_types_checkov_has_no_checks_for():
    # checkov's Bicep graph does not look inside `resource x ... = if (...)` or `[for ...]` bodies, so such a resource
    # of a checked type would pass or fail unseen. Conditional secrets therefore sit behind a conditional module.
    unchecked_types = {
        "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
        "Microsoft.EventHub/namespaces/authorizationRules",
        "Microsoft.Storage/storageAccounts/tableServices/tables",
    }
    wrapped = {d.resource_type for f in bicep_files() for d in f.resources() if d.conditional or d.looped}
    assert wrapped <= unchecked_types
