// Custom roles that grant the app only the control-plane actions it calls, each assignable only where it is used.
targetScope = 'subscription'

param environmentName string
param scannerResourceGroupId string
param appResourceGroupId string

var roleSuffix = '(${environmentName}, ${subscription().subscriptionId})'

// Resolve the images of any container group, container app or job in the subscription, and list them through Azure
// Resource Graph (the sweep): Resource Graph answers only rows of resources the caller may read. No secrets, no writes.
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

// Run short-lived scanner groups: create, watch, read logs, delete. Assignable only to the scanner resource group.
resource scannerOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'qscan-scanner-operator')
  properties: {
    roleName: 'Image scanner group operator ${roleSuffix}'
    description: 'Creates, reads, deletes and reads the logs of container groups in the scanner resource group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/containerGroups/read'
          'Microsoft.ContainerInstance/containerGroups/write'
          'Microsoft.ContainerInstance/containerGroups/delete'
          'Microsoft.ContainerInstance/containerGroups/containers/logs/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      scannerResourceGroupId
    ]
  }
}

// Attach a user-assigned identity to a resource. Assigned on the scanner identity alone, never on a resource group.
resource identityAssigner 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'qscan-identity-assigner')
  properties: {
    roleName: 'Image scanner identity assigner ${roleSuffix}'
    description: 'Reads and assigns a user-assigned managed identity to the container groups the app creates.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      appResourceGroupId
    ]
  }
}

output deploymentReaderRoleId string = deploymentReader.id
output scannerOperatorRoleId string = scannerOperator.id
output identityAssignerRoleId string = identityAssigner.id
