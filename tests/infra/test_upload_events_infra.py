"""Upload events: the storage account's system topic and its subscription to the `upload_events` function."""

from __future__ import annotations

from core.upload_events import BLOB_CREATED, STATUS_BLOB
from starters.upload_events import UPLOAD_EVENTS_FUNCTION
from tests.infra.bicep_model import Expression, bicep_file

MODULE = "app/upload-events.bicep"


def test_the_system_topic_watches_the_apps_storage_account():
    topic = bicep_file(MODULE).declaration("storageTopic")
    assert topic.resource_type == "Microsoft.EventGrid/systemTopics"
    assert topic.value("properties", "topicType") == "Microsoft.Storage.StorageAccounts"
    assert topic.value("properties", "source") == Expression("storage.id")
    assert bicep_file(MODULE).declaration("storage").existing


def test_the_subscription_delivers_status_uploads_to_the_function_by_resource_id():
    subscription = bicep_file(MODULE).declaration("statusUploads")
    assert subscription.resource_type == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    assert not subscription.conditional, "checkov cannot see inside a conditional resource: the module is conditional"
    properties = subscription.value("properties")
    assert properties["eventDeliverySchema"] == "EventGridSchema"
    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"] == Expression("'${functionApp.id}/functions/${functionName}'")
    assert "endpointUrl" not in destination["properties"], "no keys in URLs"
    default = bicep_file(MODULE).parameters()["functionName"].default
    assert default is not None and default.text == f"'{UPLOAD_EVENTS_FUNCTION}'".encode()


def test_the_filter_passes_only_status_blobs_of_uploads_containers():
    event_filter = bicep_file(MODULE).declaration("statusUploads").value("properties", "filter")
    assert event_filter["includedEventTypes"] == [BLOB_CREATED]
    assert event_filter["subjectBeginsWith"] == Expression(
        "'/blobServices/default/containers/${uploadsContainerName}-'"
    )
    assert event_filter["subjectEndsWith"] == f"/{STATUS_BLOB}"
    assert event_filter["isSubjectCaseSensitive"] is True


def test_retries_are_bounded_and_hints_expire():
    retry = bicep_file(MODULE).declaration("statusUploads").value("properties", "retryPolicy")
    assert retry == {"maxDeliveryAttempts": 10, "eventTimeToLiveInMinutes": 60}


def test_least_privilege_no_role_assignments_and_no_identity():
    module = bicep_file(MODULE)
    assert module.resources("Microsoft.Authorization/roleAssignments") == []
    assert module.declaration("storageTopic").value("identity") is None


def test_main_deploys_the_module_only_when_enabled_with_the_apps_names():
    main = bicep_file("main.bicep")
    module = main.declaration("uploadEvents")
    assert module.conditional
    assert module.value("params", "storageAccountName") == Expression("storage.outputs.storageAccountName")
    assert module.value("params", "functionAppName") == Expression("functionApp.outputs.functionAppName")
    assert module.value("params", "uploadsContainerName") == Expression("uploadsContainerName")
    enabled = main.parameters()["enableUploadEvents"].default
    assert enabled is not None and enabled.text == b"false"
