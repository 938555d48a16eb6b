from .whatsapp_cloud_api import WhatsAppApiError, WhatsAppCloudApi
