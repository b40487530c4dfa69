// Subscription-wide read of container deployments for the app (custom role, read actions only).
targetScope = 'subscription'

param appPrincipalId string
param deploymentReaderRoleId string

resource readDeployments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, deploymentReaderRoleId)
  properties: {
    roleDefinitionId: deploymentReaderRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Resolve the images of container groups, apps and jobs anywhere in the subscription, and sweep them through Resource Graph.'
  }
}
