// One Key Vault secret with a content type and an expiry (a module, so the caller can make it conditional).
param keyVaultName string
param secretName string

@secure()
param secretValue string

@description('Unix time at which the secret expires.')
param expiresOn int

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: secretValue
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: expiresOn
    }
  }
}

// The versionless URI: a Key Vault reference to it follows rotations.
output secretUri string = '${vault.properties.vaultUri}secrets/${secret.name}'
