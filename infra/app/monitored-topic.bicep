// A monitored subscription's Event Grid system topic, delivering container writes to the central hub with its identity.
// As eventgrid.bicep, but the hub may be in another subscription, and there is no scanner resource group to filter.
param tags object
param systemTopicName string
param eventHubNamespaceName string
param eventHubName string
param eventHubSubscriptionId string
param eventHubResourceGroupName string

var hubId = resourceId(
  eventHubSubscriptionId,
  eventHubResourceGroupName,
  'Microsoft.EventHub/namespaces/eventhubs',
  eventHubNamespaceName,
  eventHubName
)

// A subscription has at most one system topic for its resource events; it lives in a resource group at 'global'.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

// The topic's identity may send to the one hub: the assignment lives with the hub.
module topicSendsToHub 'roles-hub-sender.bicep' = {
  name: 'hub-sender-${uniqueString(systemTopic.id)}'
  scope: resourceGroup(eventHubSubscriptionId, eventHubResourceGroupName)
  params: {
    eventHubNamespaceName: eventHubNamespaceName
    eventHubName: eventHubName
    senderPrincipalId: systemTopic.identity.principalId
    senderId: systemTopic.id
  }
}

resource containerWrites 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: 'container-deployments'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'EventHub'
        properties: {
          resourceId: hubId
        }
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.ContainerInstance/containerGroups/write'
            'Microsoft.App/containerApps/write'
            'Microsoft.App/jobs/write'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
  dependsOn: [
    topicSendsToHub
  ]
}

output systemTopicPrincipalId string = systemTopic.identity.principalId
