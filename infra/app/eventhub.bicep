// Event Hubs namespace, the deployments hub and the app's consumer group; optional Send-only rule for the Activity Log.
param location string
param tags object
param namespaceName string
param eventHubName string

@description('Basic is cheaper but has only the $Default consumer group, 1-day retention and is no diagnostic-settings destination.')
@allowed([
  'Basic'
  'Standard'
])
param sku string = 'Standard'

@description('The app\'s consumer group (ignored on Basic, which only has $Default).')
param consumerGroupName string = 'qscanner'

@description('Create the Send-only namespace rule the Activity Log diagnostic setting needs; this turns SAS auth on.')
param enableActivityLogRule bool = false

@description('Rights of the Activity Log rule. Azure Monitor documents Manage+Listen+Send; Send suffices when the hub exists.')
param activityLogRuleRights array = [
  'Send'
]

var isBasic = sku == 'Basic'

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
    capacity: 1
  }
  properties: {
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    // Entra ID only, unless the Activity Log route needs its shared-access rule.
    disableLocalAuth: !enableActivityLogRule
    isAutoInflateEnabled: false
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: 2
    messageRetentionInDays: isBasic ? 1 : 7
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = if (!isBasic) {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'Read by the image-scanner function app.'
  }
}

// Diagnostic settings only accept a namespace-level rule. It can send, nothing else: no Listen, no Manage.
resource activityLogRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = if (enableActivityLogRule) {
  parent: namespace
  name: 'activitylog-send'
  properties: {
    rights: activityLogRuleRights
  }
}

output namespaceName string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output eventHubName string = hub.name
output eventHubId string = hub.id
output consumerGroupName string = isBasic ? '$Default' : consumerGroupName
output activityLogRuleId string = enableActivityLogRule ? activityLogRule.id : ''
