"""Getting data in: KakaoTalk uploads and the platform landing area into owners' lakes; recycling."""
