// The two user-assigned identities: one for the function app, one attached to the scanner container groups.
param location string
param tags object
param appIdentityName string
param scannerIdentityName string

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

// The scanner groups run this identity so QScanner can pull private ACR images without passwords (AcrPull only).
resource scannerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: scannerIdentityName
  location: location
  tags: tags
}

output appIdentityId string = appIdentity.id
output appIdentityName string = appIdentity.name
output appIdentityClientId string = appIdentity.properties.clientId
output appIdentityPrincipalId string = appIdentity.properties.principalId
output scannerIdentityId string = scannerIdentity.id
output scannerIdentityName string = scannerIdentity.name
output scannerIdentityClientId string = scannerIdentity.properties.clientId
output scannerIdentityPrincipalId string = scannerIdentity.properties.principalId
