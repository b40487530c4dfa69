// AcrPull for the scanner identity on one container registry (deployed into the registry's resource group).
targetScope = 'resourceGroup'

param registryName string
param scannerPrincipalId string

var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource scannerPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, scannerPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: scannerPrincipalId
    principalType: 'ServicePrincipal'
    description: 'QScanner pulls private images to scan them, with no registry password.'
  }
}
