// Completion by event: the storage account's system topic tells the app's `upload_events` function when a scanner
// uploads `{prefix}/{i}/status.json` into its uploads container (`<uploadsContainerName>-<24 hex>`).
// The function raises `scanner_upload` on the owning orchestration through the Durable client it already has, so the
// app needs no extra role; the subscription delivers to the function by resource id (AzureFunction endpoint: Event
// Grid gets the function's system key itself, no key appears in any URL). Events are hints: a lost one costs only
// latency, since the orchestration's polls are the backstop; no dead-letter container is kept for them.
// Creating the subscription needs the function to exist, so main.bicep deploys this module only with
// ENABLE_UPLOAD_EVENTS=true, after the app code is deployed (docs/deploy.md).
param tags object
param location string
param systemTopicName string
param storageAccountName string
param functionAppName string
@description('The Event Grid trigger function of the app (starters/upload_events.py).')
param functionName string = 'upload_events'
@description('Prefix of the scanner inboxes (UPLOADS_CONTAINER): containers <prefix>-<24 hex>.')
param uploadsContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// A storage account has at most one system topic; it lives in the account's region.
resource storageTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource statusUploads 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: storageTopic
  name: 'scanner-status-uploads'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/${functionName}'
        // The host invokes the function once per event of a batch anyway.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // The subject is /blobServices/default/containers/<container>/blobs/<blob name>.
      subjectBeginsWith: '/blobServices/default/containers/${uploadsContainerName}-'
      subjectEndsWith: '/status.json'
      isSubjectCaseSensitive: true
    }
    // A hint older than an hour is worth nothing: the orchestration has polled by then.
    retryPolicy: {
      maxDeliveryAttempts: 10
      eventTimeToLiveInMinutes: 60
    }
  }
}

output systemTopicName string = storageTopic.name
