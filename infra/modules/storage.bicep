// The one storage account ScaleGrow needs: the Functions host's own state (AzureWebJobsStorage: leases, keys, blob
// receipts), the Durable Functions task hub (queues, tables, large-message blobs) and the run artifacts (model and
// optimizer checkpoints per step, uploads to quantize, results, rejected uploads). Shared-key access is off, so every
// client authenticates with Microsoft Entra ID (the app with its managed identity, people with `--auth-mode login`).

@description('Globally unique storage account name (3-24 lower-case letters and digits).')
@minLength(3)
@maxLength(24)
param accountName string

@description('Azure region of the account.')
param location string

@description('Replication of the account. Standard_LRS is enough: every artifact can be recomputed from its run spec.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param skuName string = 'Standard_LRS'

@description('Days a deleted blob or container stays recoverable.')
@minValue(1)
@maxValue(365)
param softDeleteDays int = 7

@description('Days an upload stays in `uploads/` after its last write (quantized or not: the result is kept).')
@minValue(1)
@maxValue(3650)
param uploadsRetentionDays int = 14

@description('Days a rejected upload and its error report stay in `rejected/`.')
@minValue(1)
@maxValue(3650)
param rejectedRetentionDays int = 30

@description('''Network default for requests that match no rule below. Allow (default): reachable from any network,
guarded by Entra ID alone. Deny: only the IP ranges, subnets and private endpoints below reach it (the app must then
run in one of those subnets or reach a private endpoint; see infra/README.md).''')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'

@description('Public IP addresses or CIDR ranges allowed through the firewall when networkDefaultAction is Deny.')
param allowedIpRanges array = []

@description('Subnet resource IDs (with the Microsoft.Storage service endpoint) allowed when networkDefaultAction is Deny.')
param allowedSubnetIds array = []

@description('''Subnet resource ID for private endpoints (blob, queue, table: the host and the task hub use all three),
with private DNS zones linked to its virtual network; empty for none.''')
param privateEndpointSubnetId string = ''

@description('Disabled turns the public endpoint off entirely (private endpoints only); Enabled applies the rules above.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Tags for every resource.')
param tags object = {}

// The containers the service reads and writes (see shared/DESIGN.md "State lives in blobs").
var artifactContainers = [
  'runs'
  'uploads'
  'quantized'
  'rejected'
]

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // No account keys, no SAS signed with them: identity-based access only.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: networkDefaultAction
      // Logging, metrics and other trusted Azure services keep working behind the firewall.
      bypass: 'AzureServices'
      ipRules: [
        for range in allowedIpRanges: {
          value: range
          action: 'Allow'
        }
      ]
      virtualNetworkRules: [
        for subnetId in allowedSubnetIds: {
          id: subnetId
          action: 'Allow'
        }
      ]
    }
  }
}

// Uploads and rejected uploads are transient: a lifecycle rule deletes them (then soft delete keeps them
// softDeleteDays longer). quantized/ and runs/ are results and are kept.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-uploads'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'uploads/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: uploadsRetentionDays
                }
              }
            }
          }
        }
        {
          name: 'expire-rejected'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'rejected/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: rejectedRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

// Private endpoints, one per storage service the app uses, each with its privatelink DNS zone linked to the subnet's
// virtual network so the account's usual host names resolve to the private addresses from inside it.
var privateServices = empty(privateEndpointSubnetId) ? [] : [
  'blob'
  'queue'
  'table'
]
var privateEndpointVnetId = empty(privateEndpointSubnetId)
  ? ''
  : substring(privateEndpointSubnetId, 0, indexOf(privateEndpointSubnetId, '/subnets/'))

resource privateDnsZones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for service in privateServices: {
    name: 'privatelink.${service}.${environment().suffixes.storage}'
    location: 'global'
    tags: tags
  }
]

resource privateDnsLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (service, i) in privateServices: {
    parent: privateDnsZones[i]
    name: '${accountName}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: privateEndpointVnetId
      }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-07-01' = [
  for (service, i) in privateServices: {
    name: '${accountName}-${service}-pe'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: privateEndpointSubnetId
      }
      privateLinkServiceConnections: [
        {
          name: '${accountName}-${service}'
          properties: {
            privateLinkServiceId: account.id
            groupIds: [
              service
            ]
          }
        }
      ]
    }
  }
]

resource privateDnsZoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-07-01' = [
  for (service, i) in privateServices: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: service
          properties: {
            privateDnsZoneId: privateDnsZones[i].id
          }
        }
      ]
    }
  }
]

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [
  for containerName in artifactContainers: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// Blob-created events for the Event Grid based blob trigger (QuantizeOnUpload on container `uploads`). The event
// subscription itself is created after the app is running (infra/deploy.sh): its webhook URL carries the host's
// blobs_extension system key, which exists only once the Functions host has started, and must not be in a template.
resource blobEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: '${accountName}-events'
  location: location
  tags: tags
  properties: {
    source: account.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output accountName string = account.name
output accountId string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output containerNames array = artifactContainers
output eventGridSystemTopicName string = blobEvents.name
