package runnel

import "testing"

func TestParseLang(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {"  ", ""}, {"en", "en"}, {"DE", "de"}, {"zh-hant", "zh-Hant"}, {"pt_BR", "pt-BR"}, {"ja", "ja"},
	} {
		got, err := ParseLang(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLang(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"english please", "e", "123", "en-", "<script>"} {
		if _, err := ParseLang(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseLang(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestDetectLang(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"A WebSocket is a long-lived connection.", ""},
		{"Ein WebSocket ist eine dauerhafte Verbindung.", ""},
		{"WebSocket 是一种在单个 TCP 连接上进行全双工通信的协议。", "zh"},
		{"WebSocket は、単一の TCP 接続で双方向通信を行うためのプロトコルです。", "ja"},
		{"웹소켓은 하나의 TCP 연결에서 양방향 통신을 하는 프로토콜입니다.", "ko"},
		{"The word 缓存 means cache in Chinese, and this sentence is mostly English.", ""},
		{"", ""},
	} {
		if got := DetectLang(tt.text); got != tt.want {
			t.Errorf("DetectLang(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestSegmentCJK(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain English", "plain English"},
		{"全文検索", "全文 文検 検索"},
		{"使用HTTP缓存", "使用 HTTP 缓存"},
		{"一", "一"},
		{"一二 and 三", "一二 and 三"},
		{"서버에서 버전을", "서버 버에 에서 버전 전을"},
	} {
		got := SegmentCJK(tt.in)
		if got != tt.want {
			t.Errorf("SegmentCJK(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
