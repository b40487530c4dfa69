// Key Vault in RBAC mode holding the app's secrets; app settings point at them with Key Vault references.
param location string
param tags object
param keyVaultName string

@secure()
param qualysAccessToken string = ''
@secure()
param qualysClientId string = ''
@secure()
param qualysClientSecret string = ''
@secure()
param smtpPassword string = ''
@secure()
param notifyWebhookUrl string = ''
@secure()
param notifyWebhookSecret string = ''
@secure()
param notifyTeamsUrl string = ''
@secure()
param notifySlackUrl string = ''

@description('Secrets expire this many days after each deployment; `azd provision` renews them.')
@minValue(30)
param secretLifetimeDays int = 365

@description('Set by the deployment engine; the start of every secret\'s lifetime.')
param deploymentTime string = utcNow()

var secretExpiry = dateTimeToEpoch(dateTimeAdd(deploymentTime, 'P${secretLifetimeDays}D'))
var names = {
  qualysAccessToken: 'qualys-access-token'
  qualysClientId: 'qualys-client-id'
  qualysClientSecret: 'qualys-client-secret'
  smtpPassword: 'smtp-password'
  notifyWebhookUrl: 'notify-webhook-url'
  notifyWebhookSecret: 'notify-webhook-secret'
  notifyTeamsUrl: 'notify-teams-url'
  notifySlackUrl: 'notify-slack-url'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC decides who reads secrets (Key Vault Secrets User for the app); no access policies.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Each secret exists only when its value was given; modules keep the conditional outside the secret resource.
module qualysAccessTokenSecret 'keyvault-secret.bicep' = if (!empty(qualysAccessToken)) {
  name: '${deployment().name}-qualysAccessToken'
  params: {
    keyVaultName: vault.name
    secretName: names.qualysAccessToken
    secretValue: qualysAccessToken
    expiresOn: secretExpiry
  }
}

module qualysClientIdSecret 'keyvault-secret.bicep' = if (!empty(qualysClientId)) {
  name: '${deployment().name}-qualysClientId'
  params: {
    keyVaultName: vault.name
    secretName: names.qualysClientId
    secretValue: qualysClientId
    expiresOn: secretExpiry
  }
}

module qualysClientSecretSecret 'keyvault-secret.bicep' = if (!empty(qualysClientSecret)) {
  name: '${deployment().name}-qualysClientSecret'
  params: {
    keyVaultName: vault.name
    secretName: names.qualysClientSecret
    secretValue: qualysClientSecret
    expiresOn: secretExpiry
  }
}

module smtpPasswordSecret 'keyvault-secret.bicep' = if (!empty(smtpPassword)) {
  name: '${deployment().name}-smtpPassword'
  params: {
    keyVaultName: vault.name
    secretName: names.smtpPassword
    secretValue: smtpPassword
    expiresOn: secretExpiry
  }
}

module notifyWebhookUrlSecret 'keyvault-secret.bicep' = if (!empty(notifyWebhookUrl)) {
  name: '${deployment().name}-notifyWebhookUrl'
  params: {
    keyVaultName: vault.name
    secretName: names.notifyWebhookUrl
    secretValue: notifyWebhookUrl
    expiresOn: secretExpiry
  }
}

module notifyWebhookSecretSecret 'keyvault-secret.bicep' = if (!empty(notifyWebhookSecret)) {
  name: '${deployment().name}-notifyWebhookSecret'
  params: {
    keyVaultName: vault.name
    secretName: names.notifyWebhookSecret
    secretValue: notifyWebhookSecret
    expiresOn: secretExpiry
  }
}

module notifyTeamsUrlSecret 'keyvault-secret.bicep' = if (!empty(notifyTeamsUrl)) {
  name: '${deployment().name}-notifyTeamsUrl'
  params: {
    keyVaultName: vault.name
    secretName: names.notifyTeamsUrl
    secretValue: notifyTeamsUrl
    expiresOn: secretExpiry
  }
}

module notifySlackUrlSecret 'keyvault-secret.bicep' = if (!empty(notifySlackUrl)) {
  name: '${deployment().name}-notifySlackUrl'
  params: {
    keyVaultName: vault.name
    secretName: names.notifySlackUrl
    secretValue: notifySlackUrl
    expiresOn: secretExpiry
  }
}

// App setting values: a Key Vault reference when the secret was given, otherwise empty (the app treats it as unset).
// Conditional deployment evaluates only the taken branch, so an absent secret's output is never read.
output secretReferences object = {
  QUALYS_ACCESS_TOKEN: empty(qualysAccessToken) ? '' : '@Microsoft.KeyVault(SecretUri=${qualysAccessTokenSecret.outputs.secretUri})'
  QUALYS_CLIENT_ID: empty(qualysClientId) ? '' : '@Microsoft.KeyVault(SecretUri=${qualysClientIdSecret.outputs.secretUri})'
  QUALYS_CLIENT_SECRET: empty(qualysClientSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${qualysClientSecretSecret.outputs.secretUri})'
  SMTP_PASSWORD: empty(smtpPassword) ? '' : '@Microsoft.KeyVault(SecretUri=${smtpPasswordSecret.outputs.secretUri})'
  NOTIFY_WEBHOOK_URL: empty(notifyWebhookUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${notifyWebhookUrlSecret.outputs.secretUri})'
  NOTIFY_WEBHOOK_SECRET: empty(notifyWebhookSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${notifyWebhookSecretSecret.outputs.secretUri})'
  NOTIFY_TEAMS_URL: empty(notifyTeamsUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${notifyTeamsUrlSecret.outputs.secretUri})'
  NOTIFY_SLACK_URL: empty(notifySlackUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${notifySlackUrlSecret.outputs.secretUri})'
}
output keyVaultName string = vault.name
output keyVaultUri string = vault.properties.vaultUri
