// One more subscription to watch: its Event Grid system topic routed to the central hub, and the app's read role there.
// Deployed by main.bicep once per id in `monitoredSubscriptions` (other than the app's own, which eventgrid.bicep and
// roles-subscription.bicep cover). The deploying principal needs Owner (or User Access Administrator + Contributor)
// on that subscription. docs/deploy.md, "Watching more subscriptions".
targetScope = 'subscription'

param environmentName string
param location string
param tags object

@description('Resource group created in this subscription to hold its system topic.')
param eventsResourceGroupName string

param systemTopicName string

@description('The central hub (in the app\'s subscription): its namespace, hub name, subscription and resource group.')
param eventHubNamespaceName string
param eventHubName string
param eventHubSubscriptionId string
param eventHubResourceGroupName string

param appPrincipalId string

var roleSuffix = '(${environmentName}, ${subscription().subscriptionId})'

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: tags
}

// The same read-only role as custom-roles.bicep's deploymentReader, defined here because a custom role can only be
// assigned within its assignableScopes: this subscription.
resource deploymentReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'qscan-deployment-reader')
  properties: {
    roleName: 'Image scanner deployment reader ${roleSuffix}'
    description: 'Reads container groups, container apps and container app jobs (directly and through Resource Graph) to find the images they run.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/containerGroups/read'
          'Microsoft.App/containerApps/read'
          'Microsoft.App/jobs/read'
          'Microsoft.ResourceGraph/resources/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource readDeployments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, deploymentReader.id)
  properties: {
    roleDefinitionId: deploymentReader.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Resolve the images of container groups, apps and jobs anywhere in this monitored subscription.'
  }
}

module topic 'monitored-topic.bicep' = {
  name: 'monitored-topic-${uniqueString(subscription().id, systemTopicName)}'
  scope: eventsGroup
  params: {
    tags: tags
    systemTopicName: systemTopicName
    eventHubNamespaceName: eventHubNamespaceName
    eventHubName: eventHubName
    eventHubSubscriptionId: eventHubSubscriptionId
    eventHubResourceGroupName: eventHubResourceGroupName
  }
}

output systemTopicPrincipalId string = topic.outputs.systemTopicPrincipalId
