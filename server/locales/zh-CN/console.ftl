# 外访证据系统 · 管理控制台（简体中文，默认语言）
app-name = 外访证据系统
app-tagline = 双人外访 · 证据留存
lang-name = 简体中文
lang-other = English
skip-to-content = 跳到正文

nav-requests = 外访申请
nav-sign-out = 退出登录
signed-in-as = { $name }（{ $role }）
role-manager = 外访管理员
role-admin = 系统管理员
role-legal = 法务人员
role-agent = 外访人员

signin-title = 登录
signin-heading = 登录管理控制台
signin-login = 用户名
signin-password = 密码
signin-submit = 登录
signin-failed = 用户名或密码错误。
signin-throttled = 登录失败次数过多，请在 { $minutes } 分钟后再试。
signin-busy = 系统繁忙，请稍后再试。
signin-ended = 您的会话已结束，请重新登录。
signin-signed-out = 您已安全退出。
signin-agents = 外访人员请使用手机应用，不能登录控制台。

requests-title = 外访申请
requests-heading = 待审批的外访申请
requests-count = 共 { $count } 条待审批
requests-empty = 目前没有待审批的外访申请。
col-case = 案件编号
col-debtor = 债务人
col-card = 卡号
col-outstanding = 欠款金额
col-window = 期望外访时间
col-purpose = 申请事由
col-requested = 申请时间
col-requested-by = 申请来源
requested-by-phone = 外访人员手机
requested-by-console = 控制台
window-to = 至

error-title = 出错了
error-not-found = 您要找的页面不存在，或您无权查看。
error-forbidden = 您的角色不能使用此页面。
error-csrf = 表单已失效，请返回上一页刷新后重试。
error-internal = 系统出现问题，请稍后再试。如问题持续，请联系系统管理员。
error-back = 返回首页

footer-masked = 卡号和身份证号均已脱敏显示。

## Account security (A01)
nav-password = 修改密码
signin-locked = 连续登录失败次数过多，该账号已被锁定，请在 { $minutes } 分钟后再试。
signin-elsewhere = 您的账号已在其他地方登录，本次会话已结束。如果不是您本人操作，请立即修改密码并联系管理员。
password-title = 修改密码
password-heading = 修改密码
password-expired = 您的密码已超过 { $days } 天未修改。请先设置新密码，然后才能继续使用控制台。
password-current = 当前密码
password-new = 新密码
password-confirm = 再次输入新密码
password-rules = 新密码至少 { $min } 个字符，不能包含用户名，且不能与最近 { $count } 次使用过的密码相同。
password-submit = 确认修改
password-ends-others = 修改密码后，您在其他设备或浏览器上的登录将全部退出。
password-error-current = 当前密码不正确。
password-error-short = 新密码太短：至少需要 { $min } 个字符。
password-error-login = 新密码不能包含用户名。
password-error-reused = 新密码不能与最近 { $count } 次使用过的密码相同。
password-error-confirm = 两次输入的新密码不一致。
password-changed = 密码已修改。您在其他设备或浏览器上的登录已全部退出。
password-continue = 进入控制台
