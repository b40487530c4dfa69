// The app may run scanner container groups in the scanner resource group and nowhere else.
targetScope = 'resourceGroup'

param appPrincipalId string
param scannerOperatorRoleId string

resource operateScannerGroups 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, appPrincipalId, scannerOperatorRoleId)
  properties: {
    roleDefinitionId: scannerOperatorRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Create, watch, read logs of and delete scanner container groups.'
  }
}
