"""More subscriptions: main.bicep loops monitored-subscription.bicep over MONITORED_SUBSCRIPTIONS' extra ids."""

from __future__ import annotations

from tests.infra.bicep_model import Expression, bicep_file

MONITORED = "app/monitored-subscription.bicep"
TOPIC = "app/monitored-topic.bicep"
SENDER = "app/roles-hub-sender.bicep"
WATCHED_OPERATIONS = {
    "Microsoft.ContainerInstance/containerGroups/write",
    "Microsoft.App/containerApps/write",
    "Microsoft.App/jobs/write",
}


def _main_module():
    return bicep_file("main.bicep").declaration("monitoredSubscriptionRoutes")


def test_main_loops_the_module_over_other_subscriptions_at_their_scope():
    module = _main_module()
    assert module.resource_type == MONITORED and module.looped
    assert module.text("scope") == "subscription(monitoredSubscriptionId)"
    loop = (module.node().parent.text or b"").decode()  # type: ignore[union-attr]
    assert "monitoredSubscriptionId != ownSubscriptionId" in loop, "the own subscription has eventgrid.bicep"
    assert "!empty(monitoredSubscriptionId)" in loop
    assert module.text("params", "appPrincipalId") == "identities.outputs.appIdentityPrincipalId"
    assert module.text("params", "eventHubResourceGroupName") == "appResourceGroup.name"
    assert module.text("params", "eventHubSubscriptionId") == "subscription().subscriptionId"
    parameters = bicep_file("main.bicep").parameters()
    assert parameters["monitoredSubscriptions"].default is not None
    assert parameters["monitoredSubscriptions"].default.text == b"''"


def test_the_app_setting_lists_the_own_subscription_first():
    variables = bicep_file("main.bicep").variables()
    text = (variables["monitoredSubscriptionIds"].text or b"").decode()
    assert text == (
        "empty(monitoredSubscriptions) ? [ownSubscriptionId] : union([ownSubscriptionId], extraSubscriptionIds)"
    )
    assert (variables["ownSubscriptionId"].text or b"").decode() == "toLower(subscription().subscriptionId)"


def test_the_module_deploys_at_subscription_scope_with_the_read_role():
    monitored = bicep_file(MONITORED)
    assert monitored.target_scope == "subscription"
    role = monitored.declaration("deploymentReader")
    assert "".join((role.text("properties", "assignableScopes") or "").split()) == "[subscription().id]"
    assignment = monitored.declaration("readDeployments")
    assert assignment.text("properties", "roleDefinitionId") == "deploymentReader.id"
    assert assignment.text("properties", "principalId") == "appPrincipalId"
    assert monitored.declaration("topic").text("scope") == "eventsGroup"


def test_the_topic_watches_its_subscription_and_delivers_with_its_identity():
    topic_file = bicep_file(TOPIC)
    topic = topic_file.declaration("systemTopic")
    assert topic.value("identity", "type") == "SystemAssigned"
    assert topic.value("properties", "topicType") == "Microsoft.Resources.Subscriptions"
    assert topic.value("properties", "source") == Expression("subscription().id")
    route = topic_file.declaration("containerWrites")
    delivery = route.value("properties", "deliveryWithResourceIdentity")
    assert delivery["identity"] == {"type": "SystemAssigned"}
    assert delivery["destination"] == {"endpointType": "EventHub", "properties": {"resourceId": Expression("hubId")}}
    assert "destination" not in route.value("properties"), "no key-based delivery"
    assert route.value("dependsOn") == [Expression("topicSendsToHub")], "the role must exist before delivery"
    filters = route.value("properties", "filter")
    assert filters["includedEventTypes"] == ["Microsoft.Resources.ResourceWriteSuccess"]
    (operations,) = filters["advancedFilters"]
    assert operations["key"] == "data.operationName" and set(operations["values"]) == WATCHED_OPERATIONS


def test_the_sender_role_is_granted_on_the_hub_in_the_hubs_group():
    sender_module = bicep_file(TOPIC).declaration("topicSendsToHub")
    assert sender_module.text("scope") == "resourceGroup(eventHubSubscriptionId, eventHubResourceGroupName)"
    assert sender_module.text("params", "senderPrincipalId") == "systemTopic.identity.principalId"
    assignment = bicep_file(SENDER).declaration("senderSendsToHub")
    assert assignment.text("scope") == "hub"
