// AcrPull on one container registry (deployed into the registry's resource group): for the scanner identity, which
// pulls private images to scan them, and for the app identity, which reads a tag's manifest digest for the cache key.
targetScope = 'resourceGroup'

param registryName string
param scannerPrincipalId string
param appPrincipalId string

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

resource appResolvesDigests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, appPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'The scanner app reads the manifest digest of a tag (a HEAD request) to key its scan cache by digest.'
  }
}
