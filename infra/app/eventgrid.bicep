// Default event route: the subscription's Event Grid system topic pushes container writes to the hub (near real time).
param tags object
param systemTopicName string
param eventHubNamespaceName string
param eventHubName string

@description('Resource id of the scanner resource group; writes there are the scanner\'s own and are never delivered.')
param scannerResourceGroupId string

var eventHubsDataSenderRoleId = '2b629674-e913-4c01-ae53-ef4638d8f975'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: eventHubName
}

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

// The topic's identity may send to this one hub and nothing else.
resource topicSendsToHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, systemTopic.id, eventHubsDataSenderRoleId)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSenderRoleId)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid system topic delivers container deployment events to the scanner hub.'
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
          resourceId: hub.id
        }
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
      ]
      // Advanced filters are ANDed; values within one filter are ORed; string comparisons ignore case.
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
        {
          operatorType: 'StringNotBeginsWith'
          key: 'subject'
          values: [
            '${scannerResourceGroupId}/'
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

output systemTopicName string = systemTopic.name
output systemTopicPrincipalId string = systemTopic.identity.principalId
