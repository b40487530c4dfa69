// Event Hubs Data Sender on the central hub for a monitored subscription's system topic (deployed in the hub's group).
param eventHubNamespaceName string
param eventHubName string
param senderPrincipalId string

@description('Resource id of the sender (the system topic), for a stable assignment name.')
param senderId string

var eventHubsDataSenderRoleId = '2b629674-e913-4c01-ae53-ef4638d8f975'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: eventHubName
}

resource senderSendsToHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, senderId, eventHubsDataSenderRoleId)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSenderRoleId)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
    description: 'A monitored subscription\'s Event Grid system topic delivers container deployment events to the hub.'
  }
}
